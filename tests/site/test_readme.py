"""README.md stands on its own: a user who clones the project has nothing else."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_points_at_nothing_outside_the_repository():
    assert not re.search(r"(?<!\.)\.\./", README), "README links outside the repository, which a user who clones it does not have"
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not re.match(r"[a-z]+://", target):
            assert (ROOT / target).exists(), f"README links to {target}, which is not in the repository"


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```", 2)[1]
    assert "make run" in first_block and "make test" in first_block


def test_readme_names_every_role():
    for role in ("learner", "course staff", "course admin", "group leader", "manager", "platform administrator"):
        assert role in README, role
