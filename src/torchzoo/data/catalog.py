"""The datasets ``torchzoo data`` knows: where each lives under a data root, the files that make it, where
they are published (the URLs torchvision's datasets use) and their published checksums.

``names`` ships inside the package (``torchzoo/builtin_data/names``, see its SOURCES.md); ``mnist`` and
``cifar10`` are fetched. Checksums are written ``"md5:<hex>"`` or ``"sha256:<hex>"``. Each dataset's directory
under a data root comes from :data:`torchzoo.core.paths.DATASET_DIRS`: the training loaders' errors name the
download command from that table, so ``core`` needs nothing from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchzoo.core.errors import UserInputError
from torchzoo.core.paths import DATASET_DIRS
from torchzoo.core.paths import SHIPPED_ROOT as SHIPPED_ROOT  # re-exported: where the shipped names data lives
from torchzoo.core.paths import download_command as download_command  # re-exported for data list / download


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, relative to the dataset's directory, with its published checksum."""

    name: str
    checksum: str
    #: bytes, where published (None: only the checksum is)
    size: int | None


@dataclass(frozen=True)
class Archive:
    """A published archive, saved at the data root and unpacked: ``member_dir/<file>`` -> the dataset's files."""

    filename: str
    checksum: str
    size: int
    member_dir: str


@dataclass(frozen=True)
class Dataset:
    name: str
    #: the dataset's directory under a data root
    relative: str
    description: str
    files: tuple[DataFile, ...]
    #: base URLs, tried in order; a file's URL is ``base + file name`` (``--mirror`` replaces them)
    mirrors: tuple[str, ...] = ()
    #: when set, the files come out of this archive instead of being fetched one by one
    archive: Archive | None = None
    #: the files ship inside the package (``SHIPPED_ROOT / relative``)
    shipped: bool = False

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(s for s in sizes if s is not None)


_NAMES_SHA256 = {
    "Arabic.txt": (13191, "ff39e5539dfb3c575e9f569a95528d25f07f551e467a3b1954c64e3f879a15b9"),
    "Chinese.txt": (1248, "a4b144873952657b3ab3b9475840ef931dc7c51e28c14cde705963f2b4bea455"),
    "Czech.txt": (3920, "b1622f610d5d90a1d49f255ab84091d8f9f7b5480029a8ac4ddecd1ac6ee2d72"),
    "Dutch.txt": (2352, "804895bfcfc9dbcf58213dfad80ea93e4d1ebad0cf0655514034f280520874f1"),
    "English.txt": (27126, "9f4ced672c3f309d497352268cc901325c097592ffd212386d1805fe3c1e442f"),
    "French.txt": (2179, "613e37ec1a0e40d3611593d9bc5580bc9099f0d3991e25d48834dfb8239120a5"),
    "German.txt": (5611, "1ddaf5c94e29379739a279721404a2f4d1a33b8d92366a3245a5aee45e519c00"),
    "Greek.txt": (1982, "ffa076a4ae930098231ad85826c2adae3d47d13edddf723c3a44da2415fef922"),
    "Irish.txt": (1859, "d14e7478ba0eb2273ccad8c5b2730b70121914827dfea7be42af0e7878f1d7e3"),
    "Italian.txt": (5658, "969845ed05da45528a6e1ca4c5ea2b3db84280bd706b5f275e656618771ddbe1"),
    "Japanese.txt": (7623, "e3db6080fd9e5f943242d73b9507b0e0e93ef9695e7a1437556672b2487dd3f6"),
    "Korean.txt": (424, "67836224c23c792933b0275de7704bc74dcf1dbbd2ac697f372868fcc3ed347d"),
    "Polish.txt": (1166, "48d7c0edb1d5d9833038d7b867a528abb5f6ef5fcece8418a329fb43f79b2315"),
    "Portugese.txt": (555, "7fda866f280a625a35faff0657d953df14f7912c895897616e6387ca0242559d"),
    "Russian.txt": (85172, "73a5f32c8ddd38876b73b075f1570576b93d3e6d28b8c7d5e86862a637d24c7a"),
    "Scottish.txt": (753, "1811eb5ee9919bf04b8aa6e6f373e05b84a23ebef01fa0dd2a19ab84ccea6c63"),
    "Spanish.txt": (2285, "23b662e8cdef27f1226df50f3633d55cfe3eefdf0eb8061d0f2d1f676b910c1a"),
    "Vietnamese.txt": (340, "64ba9e8c494374c3fc81aed6eb0ea4557a843196f81176fed563fb44b02ecb07"),
}

NAMES = Dataset(
    name="names",
    relative=DATASET_DIRS["names"],
    description="char-RNN tutorial surnames, 18 languages (shipped in the package)",
    files=tuple(DataFile(name, f"sha256:{digest}", size) for name, (size, digest) in _NAMES_SHA256.items()),
    shipped=True,
)

MNIST = Dataset(
    name="mnist",
    relative=DATASET_DIRS["mnist"],
    description="MNIST digits, the four original IDX .gz files (torchvision's MNIST/raw layout)",
    # torchvision.datasets.MNIST.mirrors and .resources (md5 as published there)
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    files=(
        DataFile("train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
        DataFile("train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432", 28881),
        DataFile("t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3", 1648877),
        DataFile("t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c", 4542),
    ),
)

#: the five training batches of CIFAR-10 (all five: the full 50,000-image training set)
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

CIFAR10 = Dataset(
    name="cifar10",
    relative=DATASET_DIRS["cifar10"],
    description="CIFAR-10 python batches: data_batch_1..5 (50,000 train), test_batch (10,000), batches.meta",
    # torchvision.datasets.CIFAR10.url / tgz_md5 / train_list / test_list / meta
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    archive=Archive("cifar-10-python.tar.gz", "md5:c58f30108f718f92721af3b95e74349a", 170498071, "cifar-10-batches-py"),
    files=(
        DataFile("data_batch_1", "md5:c99cafc152244af753f735de768cd75f", None),
        DataFile("data_batch_2", "md5:d4bba439e000b95fd0a9bffe97cbabec", None),
        DataFile("data_batch_3", "md5:54ebc095f3ab1f0389bbae665268c751", None),
        DataFile("data_batch_4", "md5:634d18415352ddfa80567beed471001a", None),
        DataFile("data_batch_5", "md5:482c414d41f54cd18b22e5b47cb7c3cb", None),
        DataFile("test_batch", "md5:40351d587109b95175f43aff81a1287e", None),
        DataFile("batches.meta", "md5:5ff9c542aee3614f3951f8cda6e48888", 158),
    ),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (NAMES, MNIST, CIFAR10)}
CHOICES = (*DATASETS, "all")


def resolve(name: str) -> list[Dataset]:
    """``all`` or one dataset name -> the datasets; anything else is a one-line error."""
    if name == "all":
        return list(DATASETS.values())
    if name not in DATASETS:
        raise UserInputError(f"unknown dataset '{name}'; choose one of {', '.join(CHOICES)}")
    return [DATASETS[name]]


def for_relative(relative: str) -> Dataset | None:
    """The dataset stored at ``relative`` under a data root (as the training loaders look it up)."""
    return next((d for d in DATASETS.values() if d.relative == relative), None)
