"""`python -m verification.forms`: the table of forms (docs/generated/forms.md is this output; a test keeps it so)."""

from verification.forms import table

print(table(), end="")
