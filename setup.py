"""Packaging: the top-level folders reference/, harness/ and scenarios/ are
installed as subpackages of the one import package ``parbench``
(``parbench.reference``, ``parbench.harness``, ``parbench.scenarios``), so
nothing else lands at the top of site-packages.  Everything else about the
package is in pyproject.toml."""
from setuptools import find_packages, setup

FOLDERS = {"reference": "parbench.reference", "harness": "parbench.harness", "scenarios": "parbench.scenarios"}

packages = ["parbench"]
package_dir = {"parbench": "parbench"}
for folder, name in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir,
      package_data={"parbench.scenarios": ["*.toml", "*.md"],
                    "parbench.harness.differential": ["data/*.txt", "data/*.conf"]})
