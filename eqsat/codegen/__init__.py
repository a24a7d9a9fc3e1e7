"""Code generation: the kernel plan (plan.py), C rendering (c.py), compiling and caching shared
libraries (compile.py), and the BLAS that NumPy ships (blas.py)."""
