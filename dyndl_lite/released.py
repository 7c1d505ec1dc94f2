"""Networks released by a paper's authors, as data: fetched by pinned URL and SHA-256, unpickled
through an allowlist, copied into the book's own models.

Yan et al. released their Gaussian-trained MNIST networks (run 1 of the CNN, the ODENet and the
TisODE, 100 epochs, the epoch with the best test accuracy) in their repository
``HanshuYAN/TisODE`` at commit :data:`COMMIT`. They are a *control* for chapter 6: the same
weights as the paper, run through the book's own evaluation, separate what the book's protocol
changes from what its shorter training changes.

Each file is a whole pickled ``nn.Module`` in PyTorch's legacy format, and a pickle can run any
code. So :func:`fetch` checks the file's SHA-256 against :data:`RELEASED` first and
:func:`read_weights` unpickles only then, through :class:`AllowlistUnpickler`: it admits
PyTorch's tensor-rebuild functions and ``collections.OrderedDict``, and turns every class the
pickle names (the authors' ``networks.*`` and ``torch.nn`` modules) into an inert
:class:`ModuleStub` that keeps attributes and runs nothing; any other global is refused. The
weights are then copied, in order and shape, into :func:`dyndl_lite.models.yan.build`'s networks,
and :func:`load` checks that their logits equal those of :func:`reference_logits`, an independent
re-implementation of the authors' ``forward`` from the raw weights.

The files carry no licence: they are never shipped with the package or kept in the repository;
they live in the data cache (``<data cache>/TisODE/checkpoints/...``), where :func:`fetch`
downloads them when missing.

Example::

    >>> from dyndl_lite import released
    >>> net, record = released.load("odenet")        # doctest: +SKIP
    >>> record["name"], record["step_size"]           # doctest: +SKIP
    ('yan-authors-odenet-gaussian-run1', 0.1)
"""

from __future__ import annotations

import pickle
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndl_lite import pretrained
from dyndl_lite.data_cache import DatasetNotFoundError, data_root, download, offline

REPOSITORY = "HanshuYAN/TisODE"
COMMIT = "b55ca435367fc1da3cf9ec0cc26aedfdfef869d7"
SOURCE = f"Yan et al.'s repository {REPOSITORY} at commit {COMMIT[:7]}"
#: The length of the authors' training runs; each released file is the best epoch of one.
EPOCHS = 100


@dataclass(frozen=True)
class Released:
    """One released network: where it lies in the authors' repository, its SHA-256, and how the
    authors integrate it at test time (``attack_mnist/run_test.sh``)."""

    model: str  # the book's name of the architecture (dyndl_lite.models.yan.build)
    path: str  # inside the repository
    sha256: str
    step_size: float | None  # Euler step of the ODE block at test time (None: no ODE block)

    @property
    def name(self) -> str:
        """``yan-authors-<model>-gaussian-run1``: the name its evaluation record goes by."""
        return f"yan-authors-{self.model}-gaussian-run1"

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/{self.path}"

    def cached(self, root: str | Path | None = None) -> Path:
        """Where the file lies in the data cache: ``<root>/TisODE/<path>``."""
        return data_root(root) / "TisODE" / self.path


RELEASED = {
    "cnn": Released(
        "cnn",
        "checkpoints/MNIST_CNN_gaus_1/model_best.pth",
        "a3eb5b84c25c81bd3236fcb4859c9f1262077a35c687c36c430731de065b650d",
        None,
    ),
    "odenet": Released(
        "odenet",
        "checkpoints/MNIST_ODE_gaus_1/model_best.pth",
        "d367abe48ece8439dad4e022b9ebbc0ae7e1f9f9791d744f31c2907a49115483",
        0.1,
    ),
    "tisode": Released(
        "tisode",
        "checkpoints/MNIST_tisode_gaus_1/model_best.pth",
        "7c88c10448e4e0ddf7cf28e46f3de4e0bc6688ef5e93dad5e5195cccfbb2c69e",
        0.05,
    ),
}


class ReleasedNetworkError(OSError):
    """A released network's file does not match its pinned SHA-256, or holds what the allowlist
    refuses."""


def entry(model: str) -> Released:
    """The :data:`RELEASED` entry of ``model``, or a ``ValueError`` naming the known ones."""
    if model not in RELEASED:
        raise ValueError(f"no released network {model!r}; choose one of {', '.join(RELEASED)}.")
    return RELEASED[model]


def fetch(model: str, root: str | Path | None = None) -> Path:
    """The path of ``model``'s released file in the data cache, downloaded first when missing.

    The download goes to a temporary file beside the target and is renamed into place only when
    its SHA-256 is the pinned one. A file already in the cache with another SHA-256 is an error
    (it is not replaced silently). Offline (``$DYNDL_OFFLINE``) or without network, a missing file
    raises :class:`~dyndl_lite.data_cache.DatasetNotFoundError` saying where to put it.
    """
    released = entry(model)
    path = released.cached(root)
    if not path.is_file():
        if offline():
            raise DatasetNotFoundError(
                f"{released.name} is not in the data cache ({path}) and $DYNDL_OFFLINE forbids "
                f"downloading it; put the file there (from {SOURCE}, {released.path})."
            )
        try:
            download(released.url, path, released.sha256, algorithm="sha256")
        except OSError as error:
            raise DatasetNotFoundError(
                f"{released.name} is not in the data cache ({path}) and could not be downloaded "
                f"from {released.url} ({error}). Put the file there (from {SOURCE}) or go online."
            ) from error
    digest = pretrained.sha256(path)
    if digest != released.sha256:
        raise ReleasedNetworkError(
            f"{path} has SHA-256 {digest}, not the pinned {released.sha256} of {SOURCE}; "
            "it is not unpickled. Delete it and let it be downloaded again."
        )
    return path


class ModuleStub:
    """Stands for a class named in the pickle (``networks.ODENet_MNIST``, ``torch.nn.Conv2d``, ...):
    it keeps the attributes the pickle gives it (``_parameters``, ``_modules``, ...) and runs no
    code of the class it replaces."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _no_backend(*args, **kwargs) -> None:
    """Stands for ``torch.nn.backends.thnn._get_thnn_function_backend``, which old pickles call."""
    return None


class AllowlistUnpickler(pickle.Unpickler):
    """A pickle reader that resolves only the globals an old PyTorch module pickle needs.

    Admitted: PyTorch's ``_rebuild_tensor_v2`` and ``_rebuild_parameter``, float storages,
    ``collections.OrderedDict``; classes of the modules ``networks`` (the authors'),
    ``torch.nn.modules.*`` and ``torch.nn.parallel.*`` become :class:`ModuleStub` subclasses of the
    same name. Anything else raises ``pickle.UnpicklingError`` naming the global.
    """

    REAL = {
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "FloatStorage"),
        ("collections", "OrderedDict"),
    }
    STUBBED_PACKAGES = ("torch.nn.modules.", "torch.nn.parallel.")

    def find_class(self, module: str, name: str):
        if (module, name) in self.REAL:
            return super().find_class(module, name)
        if (module, name) == ("torch.nn.backends.thnn", "_get_thnn_function_backend"):
            return _no_backend
        if module == "networks" or module.startswith(self.STUBBED_PACKAGES):
            return type(name, (ModuleStub,), {"__module__": f"stub:{module}"})
        raise pickle.UnpicklingError(
            f"refused global {module}.{name}: not on the allowlist of a released network's pickle."
        )


#: What ``torch.load(pickle_module=...)`` needs of a pickle module.
_ALLOWLIST = types.SimpleNamespace(
    __name__="dyndl_lite.released.allowlist",
    Unpickler=AllowlistUnpickler,
    load=lambda file, **options: AllowlistUnpickler(file, **options).load(),
)


def _tensors(module: ModuleStub, prefix: str = "") -> list[tuple[str, Tensor]]:
    """``(name, tensor)`` of every parameter and buffer in a stub tree, in definition order."""
    state = module.__dict__
    found = [
        (prefix + key, value)
        for table in ("_parameters", "_buffers")
        for key, value in state.get(table, {}).items()
        if value is not None
    ]
    for key, child in state.get("_modules", {}).items():
        if child is not None:
            found += _tensors(child, f"{prefix}{key}.")
    return found


def read_weights(path: str | Path, sha256: str) -> list[tuple[str, Tensor]]:
    """The parameters of the pickled module at ``path``, in order, read through
    :class:`AllowlistUnpickler` after the file's SHA-256 is checked against ``sha256``."""
    path = Path(path)
    digest = pretrained.sha256(path)
    if digest != sha256:
        raise ReleasedNetworkError(
            f"{path} has SHA-256 {digest}, expected {sha256}; refusing to unpickle it."
        )
    with warnings.catch_warnings():  # the legacy format checks class sources it cannot find
        warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
        root = torch.load(path, map_location="cpu", pickle_module=_ALLOWLIST, weights_only=False)
    if not isinstance(root, ModuleStub):
        raise ReleasedNetworkError(f"{path} does not hold a pickled module.")
    return [(name, tensor.detach().float()) for name, tensor in _tensors(root)]


def copy_into(net: nn.Module, weights: list[tuple[str, Tensor]]) -> nn.Module:
    """Copy ``weights`` into ``net``'s state dict by position, each shape checked; returns
    ``net``."""
    own = net.state_dict()
    if len(own) != len(weights):
        raise ReleasedNetworkError(
            f"the released network has {len(weights)} tensors, the book's {len(own)}: "
            "not the same architecture."
        )
    for (key, mine), (theirs_name, theirs) in zip(own.items(), weights, strict=True):
        if mine.shape != theirs.shape:
            raise ReleasedNetworkError(
                f"{theirs_name} has shape {tuple(theirs.shape)}, the book's {key} "
                f"{tuple(mine.shape)}: not the same architecture."
            )
    net.load_state_dict(dict(zip(own, (t for _, t in weights), strict=True)))
    return net


def _group_norm_relu(x: Tensor, w: list[Tensor]) -> Tensor:
    return torch.relu(F.group_norm(x, min(32, x.shape[1]), w[0], w[1], eps=1e-5))


def reference_logits(model: str, weights: list[tuple[str, Tensor]], x: Tensor) -> Tensor:
    """The authors' ``forward`` (``mnist/networks.py``) written out from the raw ``weights``.

    Stem ``relu(GN(conv(relu(GN(conv(x))))))``; then for the CNN ``out + relu(GN(conv(relu(GN(
    conv(out))))))``; for the ODENet and the TisODE Euler steps ``z <- z + h f(t_k, z)`` on
    ``[0, 1]`` with ``h`` their test step, ``f = relu(GN(conv(.)))`` twice, the ODENet's
    convolutions reading ``[t, z]`` (time channel first); head: mean over pixels, linear.
    """
    w = [t for _, t in weights]
    z = _group_norm_relu(F.conv2d(x, w[0], w[1]), w[2:4])
    z = _group_norm_relu(F.conv2d(z, w[4], w[5], stride=2, padding=1), w[6:8])
    if model == "cnn":
        out = _group_norm_relu(F.conv2d(z, w[8], padding=1), w[9:11])
        z = z + _group_norm_relu(F.conv2d(out, w[11], padding=1), w[12:14])
        head = w[14:]
    else:
        timed = model == "odenet"
        conv1, norm1 = (w[8:10], w[10:12]) if timed else ([w[8], None], w[9:11])
        conv2, norm2 = (w[12:14], w[14:16]) if timed else ([w[11], None], w[12:14])
        steps = round(1.0 / entry(model).step_size)
        h = 1.0 / steps

        def conv(t: float, u: Tensor, weight: list) -> Tensor:
            if timed:
                u = torch.cat([torch.full_like(u[:, :1], t), u], dim=1)
            return F.conv2d(u, weight[0], weight[1], padding=1)

        for k in range(steps):
            t = k * h
            f = _group_norm_relu(conv(t, _group_norm_relu(conv(t, z, conv1), norm1), conv2), norm2)
            z = z + h * f
        head = w[16:] if timed else w[14:]
    return F.linear(z.mean(dim=(2, 3)), head[0], head[1])


def build_released(model: str) -> nn.Module:
    """The book's network for ``model`` with the authors' test-time step size, untrained."""
    from dyndl_lite.models.yan import TisODE, yan_cnn, yan_odenet

    released = entry(model)
    if model == "cnn":
        return yan_cnn()
    if model == "odenet":
        return yan_odenet(step_size=released.step_size)
    return TisODE(step_size=released.step_size)


def load(
    model: str, root: str | Path | None = None, check_images: int = 16
) -> tuple[nn.Module, dict]:
    """The authors' released ``model`` (``"cnn"``, ``"odenet"``, ``"tisode"``) as the book's network
    in eval mode, and a record of where it came from.

    Fetches the file (:func:`fetch`), reads its weights through the allowlist
    (:func:`read_weights`), copies them in (:func:`copy_into`) and checks on ``check_images``
    seeded random images that the network's logits equal :func:`reference_logits` (to 1e-4): a
    mapping error or a solver that differs from the authors' would show there.
    """
    released = entry(model)
    weights = read_weights(fetch(model, root), released.sha256)
    net = copy_into(build_released(model), weights).eval()
    x = torch.rand(check_images, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours, theirs = net(x), reference_logits(model, weights, x)
    gap = (ours - theirs).abs().max().item()
    if not gap <= 1e-4:
        raise ReleasedNetworkError(
            f"{released.name}: the book's network and the authors' forward disagree by {gap:.3g} "
            "on the check images; the weights were not mapped correctly."
        )
    record = {
        "name": released.name,
        "model": model,
        "source": f"{SOURCE}, {released.path}",
        "url": released.url,
        "weights_sha256": released.sha256,
        "regime": "gaussian",
        "epochs_run": EPOCHS,
        "full_recipe_epochs": EPOCHS,
        "selection": f"the epoch with the best test accuracy of {EPOCHS} (the authors' model_best)",
        "step_size": released.step_size,
        "logit_check": {"images": check_images, "max_abs_difference": gap},
    }
    return net, record
