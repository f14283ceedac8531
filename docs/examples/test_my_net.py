"""The pytest fixture a student's own test suite uses: one line checks TwoLayerNet against the float64 oracle."""

from cs231n_student import TwoLayerNet


def test_my_two_layer_net(check_backprop):
    check_backprop(TwoLayerNet, layout="cs231n")
