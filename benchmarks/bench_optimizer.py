"""What the optimizer does to two training graphs, and how long it takes. Run by hand:

    python3 benchmarks/bench_optimizer.py [--runs 5]

For the Theano tutorial's logistic regression (N=400, feats=784; outputs [prediction, cost],
updates on w and b) and a 2-layer MLP (batch 256, 784 -> 512 -> 10, tanh, softmax
cross-entropy with integer labels, SGD updates on W1, b1, W2, b2), it prints ops and estimated
cost before and after, the e-graph's size, why saturation stopped, and the median over the runs
of the optimizer's phases (f.optimization.times; "total" is the optimizer's, insert to extract)
and of the wall-clock time of eqsat.function.
It also runs one training step with and without the optimizer and reports how many of its
values (outputs and updated parameters) are not finite each way, and whether they agree where
both are finite.
Not a test: pytest's testpaths (tests/) keep it out.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import eqsat as theano
import eqsat.tensor as T


def logistic_regression(rng: np.random.Generator):
    """The tutorial's graph; returns (build, data): build() makes fresh shared variables and
    returns (inputs, outputs, updates, shared)."""
    n, feats = 400, 784
    data = [rng.standard_normal((n, feats)), rng.integers(0, 2, n).astype("float64")]
    w0 = rng.standard_normal(feats)

    def build():
        x, y = T.dmatrix("x"), T.dvector("y")
        w = theano.shared(w0.copy(), name="w")
        b = theano.shared(0.0, name="b")
        p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
        prediction = p_1 > 0.5
        xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
        cost = xent.mean() + 0.01 * (w**2).sum()
        gw, gb = T.grad(cost, [w, b])
        updates = [(w, w - 0.1 * gw), (b, b - 0.1 * gb)]
        return [x, y], [prediction, cost], updates, [w, b]

    return build, data


def mlp(rng: np.random.Generator):
    batch, n_in, n_hidden, n_out = 256, 784, 512, 10
    data = [rng.standard_normal((batch, n_in)), rng.integers(0, n_out, batch).astype("int32")]
    init = {
        "W1": rng.standard_normal((n_in, n_hidden)) * np.sqrt(1 / n_in),
        "b1": np.zeros(n_hidden),
        "W2": rng.standard_normal((n_hidden, n_out)) * np.sqrt(1 / n_hidden),
        "b2": np.zeros(n_out),
    }

    def build():
        x, labels = T.dmatrix("x"), T.ivector("labels")
        params = {k: theano.shared(v.copy(), name=k) for k, v in init.items()}
        h = T.tanh(T.dot(x, params["W1"]) + params["b1"])
        p = T.nnet.softmax(T.dot(h, params["W2"]) + params["b2"])
        cost = T.mean(T.nnet.categorical_crossentropy(p, labels))
        grads = T.grad(cost, list(params.values()))
        updates = [(v, v - 0.1 * g) for v, g in zip(params.values(), grads, strict=True)]
        return [x, labels], [cost], updates, list(params.values())

    return build, data


PHASES = ("insert", "saturate", "freeze", "pop", "extract", "total")  # f.optimization.times


def measure(build, data, runs: int) -> dict:
    times: dict[str, list[float]] = {p: [] for p in (*PHASES, "function")}
    for _ in range(runs):
        inputs, outputs, updates, _ = build()
        t = time.perf_counter()
        f = theano.function(inputs, outputs, updates=updates)
        times["function"].append(time.perf_counter() - t)
        for phase in PHASES:
            times[phase].append(f.optimization.times.get(phase, float("nan")))
    record = f.optimization

    # one training step, optimized and not, from the same initial parameters
    steps = []
    for opt in ("default", None):
        inputs, outputs, updates, shared = build()
        g = theano.function(inputs, outputs, updates=updates, optimizer=opt)
        with np.errstate(all="ignore"):
            out = g(*data)
        steps.append([*map(np.asarray, out), *(s.get_value() for s in shared)])
    both = [(np.asarray(a, float), np.asarray(b, float)) for a, b in zip(*steps, strict=True)]
    agree = all(
        np.allclose(a[fin], b[fin], rtol=1e-9, atol=1e-12)
        for a, b in both
        for fin in [np.isfinite(a) & np.isfinite(b)]
    )
    nonfinite = [
        sum(int(np.size(v) - np.isfinite(v).sum()) for v in vs) for vs in zip(*both, strict=True)
    ]
    return {
        "record": record,
        "median": {k: statistics.median(v) for k, v in times.items()},
        "agree": agree,
        "nonfinite": nonfinite,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    theano.config.opt_cache = False  # measure the optimizer, not its cache
    rng = np.random.default_rng(0)
    graphs = {"logistic regression": logistic_regression(rng), "MLP 784-512-10": mlp(rng)}
    results = {name: measure(b, d, args.runs) for name, (b, d) in graphs.items()}

    rows = [
        ("ops before / after", lambda r: f"{r['record'].ops_before} / {r['record'].ops_after}"),
        ("cost before", lambda r: f"{r['record'].cost_before:.4g}"),
        ("cost after", lambda r: f"{r['record'].cost_after:.4g}"),
        ("e-classes / e-nodes", lambda r: f"{r['record'].eclasses} / {r['record'].enodes}"),
        ("saturation steps", lambda r: str(len(r["record"].steps))),
        ("stopped by", lambda r: r["record"].stopped_by),
        ("fallback", lambda r: str(r["record"].fallback)),
        ("rules fired", lambda r: str(sum(r["record"].rules_fired.values()))),
        *[
            (f"{phase} s (median)", lambda r, p=phase: f"{r['median'][p]:.3f}")
            for phase in (*PHASES, "function")
        ],
        ("non-finite in a step: opt / none", lambda r: "{} / {}".format(*r["nonfinite"])),
        ("step = optimizer=None where finite", lambda r: "yes" if r["agree"] else "NO"),
    ]
    names = list(results)
    width = [max(len(label) for label, _ in rows)] + [
        max(len(n), *(len(fn(results[n])) for _, fn in rows)) for n in names
    ]
    mode = theano.config.mode
    print(f"eqsat optimizer, median of {args.runs} compilations (egglog, mode {mode})")
    print("  ".join(h.ljust(w) for h, w in zip(["", *names], width, strict=True)))
    print("  ".join("-" * w for w in width))
    for label, fn in rows:
        cells = [label, *(fn(results[n]) for n in names)]
        print("  ".join(c.ljust(w) for c, w in zip(cells, width, strict=True)))
    for name in names:
        fired = results[name]["record"].rules_fired
        top = sorted(fired.items(), key=lambda kv: -kv[1])[:8]
        print(f"\n{name}: rules fired: " + ", ".join(f"{k} x{v}" for k, v in top))


if __name__ == "__main__":
    main()
