"""Ships the victims of checkpoints/ inside the package (deattack/checkpoints/ in a wheel),
so `deattack eval --model lenet` works from any folder after `pip install .`. The
checkout keeps them at the repository root, where training exports and docs name them;
deattack.victims.loading looks in the package first, then in the checkout."""

from pathlib import Path
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("*.msgpack", "*.json")


class BuildWithCheckpoints(build_py):
    def run(self):
        super().run()
        source = Path(__file__).resolve().parent / "checkpoints"
        target = Path(self.build_lib) / "deattack" / "checkpoints"
        target.mkdir(parents=True, exist_ok=True)
        for pattern in SHIPPED:
            for path in sorted(source.glob(pattern)):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithCheckpoints})
