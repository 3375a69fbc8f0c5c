/**
 * The torchvision subclasses that load onepixel's CIFAR python copies (md5 checks off), shared by
 * the torchvision test and the docs test (which checks the docs show exactly these).
 */
export const SUBCLASSES = `
from torchvision.datasets import CIFAR10, CIFAR100

class ProtectedCIFAR10(CIFAR10):
    base_folder = ""  # the files are in root itself (onepixel's --out)
    meta = {**CIFAR10.meta, "md5": None}  # batches.meta: no md5 check
    def _check_integrity(self): return True  # the batches: no md5 check

class ProtectedCIFAR100(CIFAR100):
    base_folder = ""
    meta = {**CIFAR100.meta, "md5": None}
    def _check_integrity(self): return True
`;
