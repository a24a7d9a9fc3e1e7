"""The C rendering of each op: one row per op, as in tinygrad's renderers.

A row takes the output dtype, the input dtypes and the inputs' C expressions, and returns the C
expression of the result. Semantics are NumPy's, which the reference backend defines: integer
division and remainder floor toward -inf and give 0 for a zero divisor, maximum and minimum
propagate nan, `sign` keeps nan, `round` rounds half to even, bool `+` is `or`, and integers
of mixed signedness compare exactly. The
helpers they need are in `PRELUDE`. Signed overflow wraps (the library is built with -fwrapv).
"""

from __future__ import annotations

from collections.abc import Callable
from string import Template

import numpy as np

C_TYPES = {
    "float64": "double", "float32": "float",
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
    "bool": "uint8_t",
}  # fmt: skip
FLOATS = ("float32", "float64")
INTS = tuple(d for d in C_TYPES if d not in FLOATS and d != "bool")


def cast(x: str, src: str, dst: str) -> str:
    """x (of dtype src) as dtype dst, converting as NumPy's astype does."""
    if src == dst:
        return x
    if dst == "bool":
        return f"({x} != 0)"
    return f"(({C_TYPES[dst]}){x})"


def _sfx(dtype: str) -> str:
    return "f" if dtype == "float32" else ""


def _helper(name: str, dtype: str) -> str:
    return f"eq_{name}_{dtype}"


def literal(value: float | int | bool, dtype: str) -> str:
    """A C literal of exactly `value` in dtype."""
    t = C_TYPES[dtype]
    if dtype in FLOATS:
        v = float(value)
        if v != v:
            text = "NAN"
        elif v in (float("inf"), float("-inf")):
            text = "INFINITY" if v > 0 else "-INFINITY"
        else:
            text = v.hex()
        return f"(({t}){text})"
    v = int(value)
    if dtype.startswith("u") or dtype == "bool":
        return f"(({t}){v}ULL)"
    if v == np.iinfo(np.int64).min:
        return f"(({t})(-9223372036854775807LL - 1))"
    return f"(({t}){v}LL)"


Row = Callable[[str, list[str], list[str]], str]  # (out dtype, in dtypes, in exprs) -> expr


def _unary_math(fn: str) -> Row:
    return lambda o, t, a: f"{fn}{_sfx(o)}({cast(a[0], t[0], o)})"


def _float_helper(name: str) -> Row:
    return lambda o, t, a: f"{_helper(name, o)}({cast(a[0], t[0], o)})"


def _arith(symbol: str, bool_symbol: str | None = None) -> Row:
    def row(o: str, t: list[str], a: list[str]) -> str:
        x, y = cast(a[0], t[0], o), cast(a[1], t[1], o)
        if o == "bool" and bool_symbol:
            return f"({x} {bool_symbol} {y})"
        return f"(({C_TYPES[o]})({x} {symbol} {y}))"

    return row


def _binary_helper(name: str) -> Row:
    return lambda o, t, a: f"{_helper(name, o)}({cast(a[0], t[0], o)}, {cast(a[1], t[1], o)})"


def _compare(symbol: str) -> Row:
    def row(o: str, t: list[str], a: list[str]) -> str:
        kinds = [np.dtype(d).kind for d in t]
        if sorted(kinds) == ["i", "u"]:  # exact, as NumPy compares them (not as float64)
            signed = kinds.index("i")
            x, y = (a[0], a[1]) if signed == 0 else (a[1], a[0])
            order = f"eq_order_su((int64_t){x}, (uint64_t){y})"  # sign of x - y
            return f"({order} {symbol} 0)" if signed == 0 else f"(0 {symbol} {order})"
        common = str(np.result_type(*t))
        return f"({cast(a[0], t[0], common)} {symbol} {cast(a[1], t[1], common)})"

    return row


def _neg(o, t, a):
    return f"(({C_TYPES[o]})-{cast(a[0], t[0], o)})"


def _abs(o, t, a):
    x = cast(a[0], t[0], o)
    if o in FLOATS:
        return f"fabs{_sfx(o)}({x})"
    if o.startswith("int"):
        return f"({x} < 0 ? ({C_TYPES[o]})-{x} : {x})"
    return x


def _sgn(o, t, a):
    x = cast(a[0], t[0], o)
    if o in FLOATS:
        return f"{_helper('sign', o)}({x})"
    return f"(({C_TYPES[o]})(({x} > 0) - ({x} < 0)))"


def _rounding(fn: str) -> Row:
    def row(o, t, a):
        x = cast(a[0], t[0], o)
        return f"{fn}{_sfx(o)}({x})" if o in FLOATS else x

    return row


def _invert(o, t, a):
    x = cast(a[0], t[0], o)
    return f"(!{x})" if o == "bool" else f"(({C_TYPES[o]})~{x})"


def _extremum(name: str, symbol: str) -> Row:
    def row(o, t, a):
        x, y = cast(a[0], t[0], o), cast(a[1], t[1], o)
        if o in FLOATS:
            return f"{_helper(name, o)}({x}, {y})"
        return f"({x} {symbol} {y} ? {x} : {y})"

    return row


def _sqr(o, t, a):
    x = cast(a[0], t[0], o)
    return f"(({C_TYPES[o]})({x} * {x}))"


def _switch(o, t, a):
    return f"({a[0]} ? {cast(a[1], t[1], o)} : {cast(a[2], t[2], o)})"


def _cast(o, t, a):
    return cast(a[0], t[0], o)


# op -> (row, output dtypes it supports)
_ANY = tuple(C_TYPES)
_NUMERIC = FLOATS + INTS
EXPR: dict[str, tuple[Row, tuple[str, ...]]] = {
    "neg": (_neg, _NUMERIC),
    "abs": (_abs, _ANY),
    "exp": (_unary_math("exp"), FLOATS),
    "log": (_unary_math("log"), FLOATS),
    "log1p": (_unary_math("log1p"), FLOATS),
    "expm1": (_unary_math("expm1"), FLOATS),
    "log2": (_unary_math("log2"), FLOATS),
    "log10": (_unary_math("log10"), FLOATS),
    "sqrt": (_unary_math("sqrt"), FLOATS),
    "sqr": (_sqr, _NUMERIC),
    "sin": (_unary_math("sin"), FLOATS),
    "cos": (_unary_math("cos"), FLOATS),
    "tan": (_unary_math("tan"), FLOATS),
    "tanh": (_float_helper("tanh"), FLOATS),
    "erf": (_unary_math("erf"), FLOATS),
    "sigmoid": (_float_helper("sigmoid"), FLOATS),
    "softplus": (_float_helper("softplus"), FLOATS),
    "sgn": (_sgn, _NUMERIC),
    "floor": (_rounding("floor"), _NUMERIC),
    "ceil": (_rounding("ceil"), _NUMERIC),
    "round": (_rounding("nearbyint"), _NUMERIC),
    "invert": (_invert, INTS + ("bool",)),
    "add": (_arith("+", "|"), _ANY),
    "sub": (_arith("-"), _NUMERIC),
    "mul": (_arith("*", "&"), _ANY),
    "true_div": (_arith("/"), FLOATS),
    "int_div": (_binary_helper("floordiv"), _NUMERIC),
    "mod": (_binary_helper("mod"), _NUMERIC),
    "pow": (lambda o, t, a: f"pow{_sfx(o)}({cast(a[0], t[0], o)}, {cast(a[1], t[1], o)})", FLOATS),
    "maximum": (_extremum("maximum", ">"), _ANY),
    "minimum": (_extremum("minimum", "<"), _ANY),
    "lt": (_compare("<"), ("bool",)),
    "gt": (_compare(">"), ("bool",)),
    "le": (_compare("<="), ("bool",)),
    "ge": (_compare(">="), ("bool",)),
    "eq": (_compare("=="), ("bool",)),
    "neq": (_compare("!="), ("bool",)),
    "and_": (_arith("&"), INTS + ("bool",)),
    "or_": (_arith("|"), INTS + ("bool",)),
    "xor": (_arith("^"), INTS + ("bool",)),
    "switch": (_switch, _ANY),
    "cast": (_cast, _ANY),
}

# Reductions: accumulator update, and the identity it starts from.
REDUCE = {
    "sum": lambda acc, v: f"{acc} += {v};",
    "prod": lambda acc, v: f"{acc} *= {v};",
    "max": lambda acc, v: f"if ({v} > {acc} || {v} != {v}) {acc} = {v};",
    "min": lambda acc, v: f"if ({v} < {acc} || {v} != {v}) {acc} = {v};",
}


def identity(op: str, dtype: str) -> str:
    """The value a reduction starts from, as a C expression of the accumulator's dtype."""
    if op in ("sum", "prod"):
        return literal(0 if op == "sum" else 1, dtype)
    if dtype in FLOATS:
        return literal(float("-inf") if op == "max" else float("inf"), dtype)
    info = np.iinfo(np.uint8 if dtype == "bool" else dtype)
    low, high = (0, 1) if dtype == "bool" else (info.min, info.max)
    return literal(low if op == "max" else high, dtype)


def accumulator(op: str, dtype: str) -> str:
    """The dtype a reduction accumulates in: float32 sums and products in double, as Theano's
    acc_dtype and the NumPy reference (ops_math) do."""
    return "float64" if dtype == "float32" and op in ("sum", "prod") else dtype


_FLOAT_PRELUDE = """
static inline T eq_sigmoid_D(T x) {
    T e = exp_(-fabs_(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}
static inline T eq_softplus_D(T x) {  /* NumPy's logaddexp(0, x) */
    if (x == 0) return (T)0.69314718055994530942;
    if (x < 0) return log1p_(exp_(x));
    if (x > 0) return x + log1p_(exp_(-x));
    return x;
}
static inline T eq_sign_D(T x) { return x > 0 ? 1 : x < 0 ? -1 : x == 0 ? 0 : x; }
/* NumPy's: the second operand when they compare equal (maximum(0.0, -0.0) is -0.0) */
static inline T eq_maximum_D(T x, T y) { return (x > y || x != x) ? x : y; }
static inline T eq_minimum_D(T x, T y) { return (x < y || x != x) ? x : y; }
static inline T eq_mod_D(T a, T b) {  /* NumPy's npy_divmod */
    if (b == 0) return fmod_(a, b);
    T mod = fmod_(a, b);
    if (mod != 0) { if ((b < 0) != (mod < 0)) mod += b; }
    else mod = copysign_((T)0, b);
    return mod;
}
static inline T eq_floordiv_D(T a, T b) {
    if (b == 0) return a / b;
    T mod = fmod_(a, b), div = (a - mod) / b;
    if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
    if (div != 0) { T f = floor_(div); if (div - f > (T)0.5) f += 1; return f; }
    return copysign_((T)0, a / b);
}
"""

_INT_PRELUDE = """
static inline T eq_floordiv_D(T a, T b) {
    if (b == 0) return 0;
    if (SIGNED && b == (T)-1) return (T)(0 - (U)a);
    T q = a / b;
    if (SIGNED && a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
    return q;
}
static inline T eq_mod_D(T a, T b) {
    if (b == 0 || (SIGNED && b == (T)-1)) return 0;
    T r = a % b;
    if (SIGNED && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}
"""


def _float_prelude(dtype: str) -> str:
    text = _FLOAT_PRELUDE.replace("_D(", f"_{dtype}(").replace("T", C_TYPES[dtype])
    for fn in ("exp", "expm1", "fabs", "log1p", "fmod", "copysign", "floor"):
        text = text.replace(f"{fn}_(", f"{fn}{_sfx(dtype)}(")
    return text


def _int_prelude(dtype: str) -> str:
    signed = "1" if dtype.startswith("int") else "0"
    unsigned = "u" + C_TYPES[dtype] if signed == "1" else C_TYPES[dtype]
    text = _INT_PRELUDE.replace("_D(", f"_{dtype}(").replace("SIGNED", signed)
    return text.replace("(U)", f"({unsigned})").replace("T", C_TYPES[dtype])


# tanh is computed here rather than through libmvec's expm1: with no libm call its loops vectorize
# on any target with fma, run 1.2x (AVX-512) to 1.4x (AVX2) faster, and err by 2.3 ulp at most
# (3.7 before). |x| = k*ln2/2 + r with |r| <= ln2/4, s = 2^k and t = tanh(r) = r + r*z*P(z),
# z = r*r, P minimax (a Remez exchange in mpmath): tanh|x| = (s-1 + (s+1)*t) / (s+1 + (s-1)*t),
# just t for k = 0. From k = 3 on it is 1 + (2*t - 2) / (...), whose quotient is small, and so
# are its rounding errors. Selects pick only between values computed anyway: without -ffast-math
# GCC if-converts no code that may trap, so a select over even `2*t - 2` would stop vectorizing.
# (Without fma GCC 12 still moves `a * b + c` into such branches: correct, but not vectorized.)
_TANH = Template("""
static inline $T eq_fma_$D($T a, $T b, $T c) {
#ifdef $FAST_FMA
    return $FMA(a, b, c);
#else
    return a * b + c;  /* one more rounding, but no libm call */
#endif
}
static inline $T eq_tanh_$D($T x) {
    union { $T f; $U u; } ux = {x}, ua, us, ur;
    ua.u = ux.u & $ABS;
    $T a = $LIMIT < ua.f ? $LIMIT : ua.f;  /* past it tanh rounds to 1; nan stays nan */
    $T kd = eq_fma_$D(a, $INV_L, $SHIFT), k = kd - $SHIFT;  /* k = rint(a / (ln2/2)) */
    $T r = eq_fma_$D(k, -$L_HI, a);  /* exact: k*L_HI fits in the mantissa */
    r = eq_fma_$D(k, $L_LO, r);
    $T z = r * r, p = $P_LAST;$HORNER
    $T t = eq_fma_$D(r * z, p, r);
    us.f = kd;  /* its low bits hold k */
    us.u = (us.u << $MANT) + $ONE;
    $T s = us.f, sp = s + 1, sm = s - 1, den = eq_fma_$D(sm, t, sp);
    int big = k > 2.5$SFX;
    $T num = eq_fma_$D(big ? 2 : sp, t, big ? -2 : sm);
    ur.f = (big ? 1 : 0) + num / den;
    ur.u |= ux.u & $SIGN;
    return ur.f;
}
""")
# Per dtype: the limit (tanh rounds to 1 from 19.06 and 9.01 on), 2/ln2, ln2/2 = L_HI - L_LO
# (L_HI of 44 and 19 bits: k*L_HI is exact up to the limit), and P from z^0 up (its error adds
# at most 0.005 ulp to t on |r| <= ln2/4).
_TANH_CONSTANTS = {
    "float64": ("20.0", "0x1.71547652b82fep+1", "0x1.62e42fefa3a00p-2", "0x1.0ca86c3898d00p-50",
                ("-0x1.5555555555555p-2", "0x1.111111111105ep-3", "-0x1.ba1ba1b9be6a0p-5",
                 "0x1.664f47f110266p-6", "-0x1.226dc8dae1973p-7", "0x1.d680b2c2bc2a7p-9",
                 "-0x1.6dc91b9ac2f46p-10")),
    "float32": ("10.0f", "0x1.715476p+1f", "0x1.62e44p-2f", "0x1.0105c6p-22f",
                ("-0x1.555554p-2f", "0x1.110b5cp-3f", "-0x1.b225c8p-5f")),
}  # fmt: skip


def _tanh(dtype: str) -> str:
    limit, inv_l, l_hi, l_lo, poly = _TANH_CONSTANTS[dtype]
    info, sfx = np.finfo(dtype), _sfx(dtype)
    width = info.bits
    suffix = "ULL" if width == 64 else "U"
    one = int(np.ones(1, dtype).view(f"uint{width}")[0])
    horner = "".join(f"\n    p = eq_fma_{dtype}(p, z, {c});" for c in reversed(poly[:-1]))
    return _TANH.substitute(
        T=C_TYPES[dtype], U=f"uint{width}_t", D=dtype, FAST_FMA="__FP_FAST_FMA" + sfx.upper(),
        FMA="__builtin_fma" + sfx, ABS=f"0x{(1 << (width - 1)) - 1:x}{suffix}",
        SIGN=f"0x{1 << (width - 1):x}{suffix}", ONE=f"0x{one:x}{suffix}", MANT=info.nmant,
        LIMIT=limit, INV_L=inv_l, SHIFT=f"0x1.8p{info.nmant}{sfx}", L_HI=l_hi, L_LO=l_lo,
        P_LAST=poly[-1], HORNER=horner, SFX=sfx,
    )  # fmt: skip


# glibc's libmvec has SIMD versions of these; math.h declares them only under -ffast-math,
# which eqsat never uses (it breaks nan and inf), so the prelude declares them itself: loops
# with these calls then vectorize. libmvec's results are within 4 ulp of the scalar ones.
_MVEC_2_22 = ("exp", "log", "sin", "cos", "pow")
_MVEC_2_35 = ("log1p", "expm1", "log2", "log10", "tan", "tanh", "erf")


def _simd_declarations(names: tuple[str, ...]) -> list[str]:
    lines = []
    for fn in names:
        args = ", ".join(["T"] * (2 if fn == "pow" else 1))
        for t, sfx in (("double", ""), ("float", "f")):
            lines += [
                "#pragma omp declare simd notinbranch",
                f"{t} {fn}{sfx}({args.replace('T', t)});",
            ]
    return lines


PRELUDE = "\n".join(
    [
        "#include <stdint.h>",
        "#include <stdlib.h>",
        "#include <math.h>",
        "#ifdef _OPENMP",
        "#include <omp.h>",
        "#endif",
        "#if defined(EQSAT_MVEC) && defined(__x86_64__) && defined(_OPENMP)",
        *_simd_declarations(_MVEC_2_22),
        "#if __GLIBC_PREREQ(2, 35)",
        *_simd_declarations(_MVEC_2_35),
        "#endif",
        "#endif",
        *(_float_prelude(d) for d in FLOATS),
        *(_tanh(d) for d in FLOATS),
        *(_int_prelude(d) for d in INTS),
        "static inline int eq_order_su(int64_t x, uint64_t y) {",
        "    return x < 0 ? -1 : (uint64_t)x < y ? -1 : (uint64_t)x > y;",
        "}",
    ]
)
