"""Train a small conv net on scikit-learn's 8x8 digits with pyconv.graph, beside PyTorch.

    python bench/train_digits.py [--epochs N] [--seed S] [--threads T] [--graph net.svg]
                                 [--no-torch]

The network: conv 3x3 (16 filters) -> ReLU -> max pool 2 -> conv 3x3 (32) ->
ReLU -> max pool 2 -> linear (10) -> softmax cross-entropy, built on
pyconv.graph (pyconv's kernels forward and backward), trained by plain SGD
with momentum on a fixed split of ``sklearn.datasets.load_digits`` (1,797
images shipped with scikit-learn: no download): 1,347 to train, 450 held out.

When PyTorch is installed the same network, from the same initial weights,
over the same batches in the same order, with the same SGD, trains in PyTorch
beside it, one epoch of each in turn (so a busy machine slows both alike), and
the script prints the ratio of their median seconds per epoch (training only,
not the evaluation), both on the same number of threads (one by default). The
last line is pyconv's ``test accuracy``.
"""
import argparse
import time

import numpy as np

import pyconv
from pyconv import graph

EPOCHS, BATCH, LR, MOMENTUM = 10, 32, 0.03, 0.9
CHANNELS = (16, 32)


def load_data():
    """Train images, test images, train labels, test labels; images (N, 1, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(images, digits.target, test_size=450, random_state=0,
                            stratify=digits.target)


def init_weights(seed):
    """He-initialised float32 weights, the same arrays for pyconv and PyTorch."""
    rng = np.random.default_rng(seed)
    c1, c2 = CHANNELS

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {"w1": he((c1, 1, 3, 3), 9), "b1": np.zeros(c1, np.float32),
            "w2": he((c2, c1, 3, 3), 9 * c1), "b2": np.zeros(c2, np.float32),
            "w3": he((4 * c2, 10), 4 * c2), "b3": np.zeros(10, np.float32)}


def scores(params, images):
    """The network as a pyconv.graph, up to the class scores (N, 10)."""
    h = graph.constant(images, name="images")
    h = graph.max_pool2d(graph.relu(graph.conv2d(h, params["w1"], params["b1"], padding=1)), 2)
    h = graph.max_pool2d(graph.relu(graph.conv2d(h, params["w2"], params["b2"], padding=1)), 2)
    return graph.add(graph.matmul(graph.flatten(h), params["w3"]), params["b3"], name="scores")


def loss_of(params, images, labels):
    labels = graph.constant(labels, name="labels")
    return graph.softmax_cross_entropy(scores(params, images), labels, name="loss")


def pyconv_epoch(params, velocity, images, labels, order):
    """One epoch of SGD with momentum (PyTorch's rule: v = mu v + g; w -= lr v); the mean loss."""
    losses = []
    for start in range(0, len(order), BATCH):
        batch = order[start:start + BATCH]
        loss = loss_of(params, images[batch], labels[batch])
        loss.backward()
        for key, p in params.items():
            velocity[key] *= MOMENTUM
            velocity[key] += p.grad
            p.value -= LR * velocity[key]
        losses.append(float(loss.value))
    return float(np.mean(losses))


def torch_trainer(weights, threads):
    """The same network in PyTorch: (params, optimizer), or None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    params = {key: torch.tensor(w, requires_grad=True) for key, w in weights.items()}
    return params, torch.optim.SGD(params.values(), lr=LR, momentum=MOMENTUM)


def torch_scores(params, images):
    import torch.nn.functional as F

    h = F.max_pool2d(F.relu(F.conv2d(images, params["w1"], params["b1"], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, params["w2"], params["b2"], padding=1)), 2)
    return h.flatten(1) @ params["w3"] + params["b3"]


def torch_epoch(trainer, images, labels, order):
    import torch
    import torch.nn.functional as F

    params, optimizer = trainer
    losses = []
    for start in range(0, len(order), BATCH):
        batch = torch.from_numpy(order[start:start + BATCH])
        loss = F.cross_entropy(torch_scores(params, images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def train(epochs=EPOCHS, seed=0, n_train=None, with_torch=True, threads=1, log=print):
    """Train pyconv's network (and PyTorch's beside it, if asked and installed).

    Returns the history (a dict per epoch: loss, accuracy, seconds, and PyTorch's as
    torch_loss, torch_accuracy, torch_seconds), pyconv's trained params, and the training
    (images, labels) used.
    """
    threads = pyconv.resolve_num_threads(threads)
    x_train, x_test, y_train, y_test = load_data()
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    weights = init_weights(seed)
    params = {key: graph.param(w, name=key) for key, w in weights.items()}
    velocity = {key: np.zeros_like(w) for key, w in weights.items()}
    trainer = torch_trainer(weights, threads) if with_torch else None
    if with_torch and trainer is None:
        log("PyTorch is not installed: pyconv trains alone")
    if trainer is not None:
        import torch
        tx_train, ty_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
        tx_test = torch.from_numpy(x_test)
    log(f"{len(x_train)} training and {len(x_test)} test images, batches of {BATCH}, "
        f"{threads} thread{'s' if threads > 1 else ''}")
    order_rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        order = order_rng.permutation(len(x_train))
        with pyconv.num_threads(threads):
            start = time.perf_counter()
            loss = pyconv_epoch(params, velocity, x_train, y_train, order)
            seconds = time.perf_counter() - start
            accuracy = float(np.mean(scores(params, x_test).value.argmax(1) == y_test))
        result = {"epoch": epoch, "loss": loss, "accuracy": accuracy, "seconds": seconds}
        line = (f"epoch {epoch:2d}  pyconv: loss {loss:.4f}  test acc {accuracy:.4f}  "
                f"{seconds:.3f} s")
        if trainer is not None:
            start = time.perf_counter()
            t_loss = torch_epoch(trainer, tx_train, ty_train, order)
            t_seconds = time.perf_counter() - start
            with torch.no_grad():
                t_accuracy = float(np.mean(
                    torch_scores(trainer[0], tx_test).argmax(1).numpy() == y_test))
            result.update(torch_loss=t_loss, torch_accuracy=t_accuracy, torch_seconds=t_seconds)
            line += (f"   PyTorch: loss {t_loss:.4f}  test acc {t_accuracy:.4f}  "
                     f"{t_seconds:.3f} s")
        log(line)
        history.append(result)
    return history, params, (x_train, y_train)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"default {EPOCHS}")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and batch order")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for pyconv and PyTorch alike (default 1: a batch of 32 "
                             "8x8 images is too little work to share out; -1 is all cores)")
    parser.add_argument("--graph", metavar="SVG",
                        help="draw the network's graph (one batch, values and gradients)")
    parser.add_argument("--no-torch", action="store_true", help="train pyconv alone")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    history, params, (x_train, y_train) = train(args.epochs, args.seed,
                                                with_torch=not args.no_torch,
                                                threads=args.threads)
    if "torch_seconds" in history[0]:
        ours = np.median([r["seconds"] for r in history])
        theirs = np.median([r["torch_seconds"] for r in history])
        print(f"median seconds per epoch: pyconv {ours:.3f}, PyTorch {theirs:.3f}; "
              f"pyconv / PyTorch = {ours / theirs:.2f}")
    if args.graph:
        loss = loss_of(params, x_train[:BATCH], y_train[:BATCH])
        loss.backward()
        loss.to_svg(args.graph)
        print(f"wrote {args.graph}: the graph of one batch of {BATCH}")
    print(f"test accuracy {history[-1]['accuracy']:.4f}")


if __name__ == "__main__":
    main()
