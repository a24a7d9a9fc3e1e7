"""Linear algebra: transposes, dot reassociation, scalars out of dots, GEMM and GEMV formation.

- Transposes: (Aᵀ)ᵀ = A and (AB)ᵀ = BᵀAᵀ; x·A (vector times matrix) is Aᵀx, so that one GEMV
  form (a matrix times a vector) covers both.
- Scalar factors are brought to one canonical form, a rank-0 term on the left of the product:
  `c * A` with c a literal of any rank (its shape is all ones), a dimshuffle of a rank-0 term
  (how `alpha * A` reaches the graph) or a rank-0 term on the right all become `c0 * A`. The
  rules below match only that form.
- dot(c·A, B) = c·dot(A, B) for a rank-0 c, so the scalar can become GEMM's alpha.
- Dot associativity in both directions ("expand" phase): the cost model prices a dot by its
  multiply-adds (sqrt(|A|·|B|·|AB|) = m·k·n), so extraction picks the cheapest chain order.
- α·dot(A, B) + β·C → gemm(C, α, A, B, β) (also C − α·dot(A, B), and without α or β, which
  become literal ones of the result's dtype), likewise gemv for a matrix times a vector; then a
  transposed operand (Dimshuffle (1, 0)) becomes the op's trans_a / trans_b flag.

Conditions keep every rule on the ranks where it holds: gemm wants matrices (rank 2), gemv a
matrix and vectors; the transpose pattern (1, 0) applies to a matrix (a rank-3 input with a
broadcastable last axis would be dropped to rank 2, so (Aᵀ)ᵀ = A needs A's rank to be 2). Rules
that build new products from matched operands ask for one dtype throughout, so no product
changes its dtype, and BLAS (one dtype per call) can run what they form.
"""

from eqsat.rules import Rule, ruleset, same_dtype, same_type

T = "\"(('new_order', (1, 0)),)\""  # repr(node.params) of x.T for a matrix x


def transpose(x: str) -> str:
    return f"(Dimshuffle {T} {x})"


def flags(op: str, ta: bool, tb: bool = False) -> str:
    """The params string of a gemm or gemv node (its repr(node.params))."""
    if op == "Gemv":
        return f"\"(('trans_a', {ta}),)\""
    return f"\"(('trans_a', {ta}), ('trans_b', {tb}))\""


ONE = "(LitN 1.0 d 0)"  # with the fact DT_E: a rank-0 one of the result's dtype
MINUS_ONE = "(LitN -1.0 d 0)"
DT_E = "(= d (DT e__))"


def rank(var: str, n: int) -> str:
    return f"(= (Rank {var}) {n})"


SCALAR = rank("s", 0)
MATCHED_RANK = "(= (Rank e__) (Rank y))"  # dropping the broadcast keeps the product's rank
NOT_SCALAR = "(= r (Rank y)) (> r 0)"

# (constructor, dot operand names, their ranks, accumulator, its rank)
_BLAS = [("Gemm", "A B", (2, 2), "C", 2), ("Gemv", "A x", (2, 1), "y", 1)]


def _formation(op: str, operands: str, ranks: tuple[int, int], acc: str, acc_rank: int) -> list:
    """The gemm (or gemv) forms of ±α·dot(A, B) + C, α and β absent or a rank-0 term."""
    a, b = operands.split()
    dot = f"(Dot {a} {b})"
    scaled = f"(Mul s {dot})"
    name = op.lower()
    shapes = (rank(a, ranks[0]), rank(b, ranks[1]), rank(acc, acc_rank))
    plain = (*shapes, DT_E, *same_dtype(a, b, acc))
    with_s = (*shapes, DT_E, SCALAR, *same_dtype("s", a, b, acc))
    ff = flags(op, False, False)

    def gemm(alpha: str) -> str:
        return f"({op} {ff} {acc} {alpha} {a} {b} {ONE})"

    return [
        Rule(
            f"{name}_dot_plus_acc",
            f"(Add {dot} {acc})",
            gemm(ONE),
            f"dot({a}, {b}) + {acc} = {name}({acc}, 1, {a}, {b}, 1)",
            plain,
        ),
        Rule(
            f"{name}_acc_plus_dot",
            f"(Add {acc} {dot})",
            gemm(ONE),
            f"{acc} + dot({a}, {b}) = {name}({acc}, 1, {a}, {b}, 1)",
            plain,
        ),
        Rule(
            f"{name}_scaled_plus_acc",
            f"(Add {scaled} {acc})",
            gemm("s"),
            f"s·dot({a}, {b}) + {acc} = {name}({acc}, s, {a}, {b}, 1) for a rank-0 s",
            with_s,
        ),
        Rule(
            f"{name}_acc_plus_scaled",
            f"(Add {acc} {scaled})",
            gemm("s"),
            f"{acc} + s·dot({a}, {b}) = {name}({acc}, s, {a}, {b}, 1) for a rank-0 s",
            with_s,
        ),
        Rule(
            f"{name}_acc_minus_dot",
            f"(Sub {acc} {dot})",
            gemm(MINUS_ONE),
            f"{acc} − dot({a}, {b}) = {name}({acc}, −1, {a}, {b}, 1)",
            plain,
        ),
        Rule(
            f"{name}_acc_minus_scaled",
            f"(Sub {acc} {scaled})",
            gemm("(Neg s)"),
            f"{acc} − s·dot({a}, {b}) = {name}({acc}, −s, {a}, {b}, 1) for a rank-0 s "
            "(a gradient step)",
            with_s,
        ),
        Rule(
            f"{name}_beta",
            f"({op} p (Mul t {acc}) s {a} {b} {ONE})",
            f"({op} p {acc} s {a} {b} t)",
            f"{name}(t·{acc}, s, {a}, {b}, 1) = {name}({acc}, s, {a}, {b}, t) for a rank-0 t",
            (rank("t", 0), "(= d (DT t))", *same_dtype("t", acc)),
        ),
    ]


def _flags() -> list:
    """A transposed matrix operand of gemm/gemv becomes its trans flag."""
    out = []
    for tb in (False, True):
        out.append(
            Rule(
                f"gemm_trans_a{'_tb' if tb else ''}",
                f"(Gemm {flags('Gemm', False, tb)} C s {transpose('A')} B t)",
                f"(Gemm {flags('Gemm', True, tb)} C s A B t)",
                f"gemm(C, s, Aᵀ, B, t; trans_a=False, trans_b={tb}) = gemm(C, s, A, B, t; "
                f"trans_a=True, trans_b={tb})",
                (rank("A", 2),),
            )
        )
    for ta in (False, True):
        out.append(
            Rule(
                f"gemm_trans_b{'_ta' if ta else ''}",
                f"(Gemm {flags('Gemm', ta, False)} C s A {transpose('B')} t)",
                f"(Gemm {flags('Gemm', ta, True)} C s A B t)",
                f"gemm(C, s, A, Bᵀ, t; trans_a={ta}, trans_b=False) = gemm(C, s, A, B, t; "
                f"trans_a={ta}, trans_b=True)",
                (rank("B", 2),),
            )
        )
    out.append(
        Rule(
            "gemv_trans_a",
            f"(Gemv {flags('Gemv', False)} y s {transpose('A')} x t)",
            f"(Gemv {flags('Gemv', True)} y s A x t)",
            "gemv(y, s, Aᵀ, x, t; trans_a=False) = gemv(y, s, A, x, t; trans_a=True)",
            (rank("A", 2),),
        )
    )
    return out


RULES = ruleset("linalg", [
    # transposes
    Rule("transpose_transpose", f"(Dimshuffle {T} (Dimshuffle {T} x))", "x", "(xᵀ)ᵀ = x",
         same_type("x"), "ieee"),
    Rule("dot_transpose", transpose("(Dot A B)"), f"(Dot {transpose('B')} {transpose('A')})",
         "(AB)ᵀ = BᵀAᵀ for matrices A, B", (rank("A", 2), rank("B", 2))),
    Rule("vector_dot_matrix", "(Dot x A)", f"(Dot {transpose('A')} x)",
         "dot(x, A) = dot(Aᵀ, x) for a vector x and a matrix A", (rank("x", 1), rank("A", 2))),
    # scalar factors: a rank-0 term on the left of the product
    Rule("scalar_literal_left", "(Mul (LitN v d n) y)", "(Mul (LitN v d 0) y)",
         "c·y = c0·y: a literal of rank n ≤ rank(y) is its rank-0 value, broadcast",
         ("(> n 0)", MATCHED_RANK), "ieee"),
    Rule("scalar_literal_right", "(Mul y (LitN v d n))", "(Mul (LitN v d 0) y)",
         "y·c = c0·y: a literal of rank n ≤ rank(y) is its rank-0 value, broadcast",
         (NOT_SCALAR, MATCHED_RANK), "ieee"),
    Rule("scalar_dimshuffle_left", "(Mul (Dimshuffle p s) y)", "(Mul s y)",
         "dimshuffle(s)·y = s·y for a rank-0 s (the broadcast is implicit)",
         (SCALAR, MATCHED_RANK), "ieee"),
    Rule("scalar_dimshuffle_right", "(Mul y (Dimshuffle p s))", "(Mul s y)",
         "y·dimshuffle(s) = s·y for a rank-0 s (the broadcast is implicit)",
         (SCALAR, MATCHED_RANK), "ieee"),
    Rule("scalar_right", "(Mul y s)", "(Mul s y)", "y·s = s·y for a rank-0 s and a tensor y",
         (SCALAR, NOT_SCALAR), "ieee"),
    Rule("scalar_out_of_dot_left", "(Dot (Mul s A) B)", "(Mul s (Dot A B))",
         "dot(s·A, B) = s·dot(A, B) for a rank-0 s", (SCALAR, *same_dtype("s", "A", "B"))),
    Rule("scalar_out_of_dot_right", "(Dot A (Mul s B))", "(Mul s (Dot A B))",
         "dot(A, s·B) = s·dot(A, B) for a rank-0 s", (SCALAR, *same_dtype("s", "A", "B"))),
    # matrix chains: both orders in the e-graph, the cost model picks
    Rule("dot_assoc_left", "(Dot A (Dot B C))", "(Dot (Dot A B) C)",
         "A(BC) = (AB)C for a matrix B (A and C matrices or vectors)",
         (rank("B", 2), *same_dtype("A", "B", "C")), "exact", "expand"),
    Rule("dot_assoc_right", "(Dot (Dot A B) C)", "(Dot A (Dot B C))",
         "(AB)C = A(BC) for a matrix B (A and C matrices or vectors)",
         (rank("B", 2), *same_dtype("A", "B", "C")), "exact", "expand"),
    # BLAS
    *[r for spec in _BLAS for r in _formation(*spec)],
    *_flags(),
])  # fmt: skip
