"""A plug-in file that kills its process while its definitions run (os._exit(0) in a default argument, evaluated when
the function is defined): verification must not exit 0."""

import os


def dies(code=os._exit(0)):
    return code


def fn(params, x, t, spec):
    raise AssertionError("never reached")
