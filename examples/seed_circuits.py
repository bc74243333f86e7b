"""The seed circuits: small expressions whose derivatives you can check by hand.

Each circuit is built as a chainrule graph, ``cr.grad`` appends the gradient
nodes to that graph, and ``cr.function`` compiles values and gradients into
one generated NumPy function. At the end the generated source of the logistic
neuron is printed: forward pass and backward pass, one line per op.

Run it from the repository root:

    python examples/seed_circuits.py
"""

import math

import chainrule as cr


def fmt(value):
    return f"{float(value):g}"


def add_multiply():
    """f = (x + y) * z at (-2, 5, -4): f = -12, df/dx = df/dy = z = -4, df/dz = x + y = 3."""
    x, y, z = cr.placeholder("x"), cr.placeholder("y"), cr.placeholder("z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    grads = cr.grad(f, [x, y, z])
    fn = cr.function([x, y, z], [f] + grads)
    value, gx, gy, gz = fn(-2.0, 5.0, -4.0)
    print("(x + y) * z at x=-2, y=5, z=-4")
    print(f"  value  f     = {fmt(value)}")
    print(f"  df/dx = {fmt(gx)}, df/dy = {fmt(gy)}, df/dz = {fmt(gz)}")
    return fn


def multiply():
    """f = x * y at (2, -6): f = -12, df/dx = y = -6, df/dy = x = 2."""
    x, y = cr.placeholder("x"), cr.placeholder("y")
    f = x * y
    f.name = "f"
    gx, gy = cr.grad(f, [x, y])
    fn = cr.function([x, y], [f, gx, gy])
    value, dx, dy = fn(2.0, -6.0)
    print("x * y at x=2, y=-6")
    print(f"  value  f     = {fmt(value)}")
    print(f"  df/dx = {fmt(dx)}, df/dy = {fmt(dy)}")
    return fn


def neuron():
    """The logistic neuron z = w*x + b; yhat = sigmoid(z); L = 0.5*(y - yhat)**2."""
    w, x, b, y = (cr.placeholder(n) for n in ("w", "x", "b", "y"))
    wx = w * x
    wx.name = "wx"
    z = wx + b
    z.name = "z"
    yhat = cr.sigmoid(z)
    yhat.name = "yhat"
    err = y - yhat
    err.name = "err"
    L = 0.5 * err ** 2
    L.name = "L"
    dw, db = cr.grad(L, [w, b])
    fn = cr.function([w, x, b, y], [L, dw, db])
    value, gw, gb = fn(2.0, -1.0, 0.5, 1.0)
    print("logistic neuron at w=2, x=-1, b=0.5, y=1")
    print(f"  loss   L     = {float(value):.6f}")
    print(f"  dL/dw = {float(gw):.6f}, dL/db = {float(gb):.6f}")
    # The same numbers by hand, with the chain rule written out in floats:
    # dL/dz = -(y - yhat) * yhat * (1 - yhat), dL/dw = x * dL/dz, dL/db = dL/dz.
    s = 1 / (1 + math.exp(-(2.0 * -1.0 + 0.5)))
    dz = -(1.0 - s) * s * (1 - s)
    print(f"  by hand: L = {0.5 * (1.0 - s) ** 2:.6f}, "
          f"dL/dw = {-1.0 * dz:.6f}, dL/db = {dz:.6f}")
    return fn


def main():
    add_multiply()
    print()
    multiply()
    print()
    fn = neuron()
    print()
    print("Generated NumPy source of the neuron (forward and backward pass):")
    print()
    print(fn.source)


if __name__ == "__main__":
    main()
