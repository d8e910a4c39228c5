"""docs/instructors.md: linked from the README, its commands name real modules and real options."""
import re

from utils import config

DOC = config.ROOT / "docs" / "instructors.md"


def test_readme_links_the_guide():
    readme = (config.ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## For instructors", 1)[1].split("\n## ", 1)[0]
    assert "(docs/instructors.md)" in section
    for command in ("utils.run_course --fast", "utils.editions", "utils.grade"):
        assert command in section


def test_every_documented_command_exists_with_its_options():
    text = DOC.read_text(encoding="utf-8")
    commands = re.findall(r"python -m (utils\.\w+)([^\n`#]*)", text)
    assert {m for m, _ in commands} >= {"utils.run_course", "utils.editions", "utils.grade"}
    for module, args in commands:
        wrapper = config.ROOT / (module.replace(".", "/") + ".py")
        impl = config.ROOT / "utils" / "tools" / (module.split(".")[1] + ".py")
        assert wrapper.exists(), f"{module} is not a command"
        source = impl.read_text(encoding="utf-8")
        for option in re.findall(r"(--[a-z][a-z-]*)", args):
            assert f'"{option}"' in source, f"{module} has no option {option}"


def test_the_plan_covers_every_notebook_once():
    plan = DOC.read_text(encoding="utf-8").split("## 1.", 1)[1].split("## 2.", 1)[0]
    rows = [r for r in plan.splitlines() if re.match(r"\| \d+ \|", r)]
    taught = re.findall(r"\b(\d\d[ab]?) [a-zA-Z]", " ".join(r.split("|")[2] for r in rows))
    notebooks = sorted(p.name.split("_")[0] for p in config.NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
    assert sorted(set(taught)) == notebooks
