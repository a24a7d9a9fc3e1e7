"""Logistic regression, as in Theano's tutorial, running on eqsat.

    python examples/logistic_regression.py --steps 100
    python -m eqsat.explain examples/logistic_regression.py    # and what eqsat did to it

The model, its graph and the training loop are the tutorial's; only the imports name eqsat.
"""

import argparse
import time

import numpy

import eqsat as theano
import eqsat.tensor as T


def make_data(seed, N, feats):  # noqa: N803
    """A dataset D = (input_values, target_class) and initial weights."""
    rng = numpy.random.RandomState(seed)
    D = (rng.randn(N, feats), rng.randint(size=N, low=0, high=2))  # noqa: N806
    # The tutorial's w = randn(feats) puts |x.w| near 80, where 1 - p_1 rounds to 0: the cost
    # and its gradient are finite only because the optimizer rewrites them into softplus and
    # sigmoid forms (with optimizer=None they are nan).
    return D, rng.randn(feats)


def main(steps=100, seed=0, N=400, feats=784, mode=None, verbose=True):  # noqa: N803
    D, w_init = make_data(seed, N, feats)  # noqa: N806

    # declare Theano symbolic variables
    x = T.dmatrix("x")
    y = T.dvector("y")

    # the weights and the bias are shared, so they keep their values between training steps
    w = theano.shared(w_init, name="w")
    b = theano.shared(0.0, name="b")

    # construct the expression graph
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))  # probability that target = 1
    prediction = p_1 > 0.5  # the prediction thresholded
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)  # cross-entropy loss
    cost = xent.mean() + 0.01 * (w**2).sum()  # the cost to minimize
    gw, gb = T.grad(cost, [w, b])  # its gradient w.r.t. w and b

    # compile
    start = time.perf_counter()
    train = theano.function(
        inputs=[x, y],
        outputs=[prediction, cost],
        updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)),
        mode=mode,
        name="train",
    )
    predict = theano.function(inputs=[x], outputs=prediction, mode=mode, name="predict")
    evaluate = theano.function(inputs=[x, y], outputs=cost, mode=mode, name="evaluate")
    compiled = time.perf_counter()

    # train
    initial_cost = float(evaluate(D[0], D[1]))
    for _ in range(steps):
        pred, err = train(D[0], D[1])
    trained = time.perf_counter()

    results = {
        "steps": steps,
        "initial_cost": initial_cost,
        "final_cost": float(evaluate(D[0], D[1])),
        "accuracy": float(numpy.mean(predict(D[0]) == D[1])),
        "compile_seconds": compiled - start,
        "train_seconds": trained - compiled,
        "w": w.get_value(),
        "b": float(b.get_value()),
    }
    if verbose:
        nodes = len(train.maker.fgraph.toposort())
        print(f"logistic regression: N={N} samples, {feats} features, {steps} steps")
        print(f"training function: {nodes} ops (forward and gradient), mode={train.mode!r}")
        print(f"cost:              {results['initial_cost']:.6f} -> {results['final_cost']:.6f}")
        print(f"training accuracy: {results['accuracy']:.1%}")
        print(f"time:              {results['compile_seconds']:.3f} s compiling, "
              f"{results['train_seconds']:.3f} s training")  # fmt: skip
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args()
    main(args.steps, args.seed)
