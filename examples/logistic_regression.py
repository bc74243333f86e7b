"""Logistic regression trained by plain gradient descent, with chainrule.

The model, its loss and the gradient are one symbolic graph; ``cr.grad``
appends the backward pass to it, and ``cr.function(..., updates=...)``
compiles forward pass, backward pass and the parameter update into one
generated NumPy function that is called once per step.

Run it from the repository root:

    python examples/logistic_regression.py
"""

import numpy as np

import chainrule as cr


def make_data(n=400, seed=0):
    """Two Gaussian blobs in the plane, labelled 0 and 1."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-1.0, -0.5], [1.0, 0.5]])
    labels = rng.integers(0, 2, size=n)
    points = centres[labels] + 0.8 * rng.standard_normal((n, 2))
    return points, labels.astype(np.float64)


def main():
    points, labels = make_data()

    # The graph: inputs, parameters, model, loss.
    X = cr.placeholder("X", shape=(None, 2))   # any batch size
    y = cr.placeholder("y", shape=(None,))
    w = cr.parameter(np.zeros(2), name="w")
    b = cr.parameter(0.0, name="b")

    logits = X @ w + b
    logits.name = "logits"
    # Binary cross-entropy written stably: -[y log s(z) + (1-y) log(1-s(z))]
    # equals softplus(z) - y*z, which never takes the log of 0.
    loss = cr.mean(cr.softplus(logits) - y * logits)
    loss.name = "loss"

    # Symbolic gradients: new nodes appended to the same graph.
    grad_w, grad_b = cr.grad(loss, [w, b])

    lr = 0.5
    train_step = cr.function([X, y], loss,
                             updates={w: w - lr * grad_w, b: b - lr * grad_b})
    prob = cr.sigmoid(logits)
    prob.name = "prob"
    predict = cr.function([X], prob)

    steps = 100
    losses = []
    for step in range(steps + 1):
        # The returned loss is computed with the parameters *before* the update.
        losses.append(float(train_step(points, labels)))
        if step % 10 == 0:
            print(f"step {step:3d}  loss {losses[-1]:.4f}")

    accuracy = float(np.mean((predict(points) > 0.5) == (labels == 1)))
    print(f"w = {np.round(w.value, 3)}, b = {float(b.value):.3f}")
    print(f"initial loss {losses[0]:.4f}, final loss {losses[-1]:.4f}")
    print(f"accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
