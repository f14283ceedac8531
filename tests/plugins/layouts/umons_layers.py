"""UMONS Machine Learning II, assignment IV, as its students write it: layer objects with forward/backward over a
cached input, weight (in_features, out_features), and a Net running them in reverse -- with the slips the layout's
hints name. Examples for verification's layers layout, written for the tests."""

import torch


class Linear(object):
    bug = ""

    def __init__(self, in_features, out_features):
        super(Linear, self).__init__()
        self.weight = torch.empty(in_features, out_features)
        self.bias = torch.empty(out_features)
        self.init_params()
        self.cache = None
        self.weight_grad = None
        self.bias_grad = None

    def init_params(self, std=1.0):
        self.weight = std * torch.randn_like(self.weight)
        self.bias = torch.rand_like(self.bias)

    def forward(self, x):
        y = x @ self.weight + self.bias
        self.cache = y if self.bug == "cache_output" else x
        return y

    def backward(self, dupstream):
        x = self.cache
        dx = dupstream if self.bug == "dx_no_weight" else dupstream @ self.weight.T
        self.weight_grad = x.T @ dupstream
        self.bias_grad = dupstream if self.bug == "bias_not_summed" else dupstream.sum(dim=0)
        return dx


class ReLU(object):
    def __init__(self):
        self.cache = None

    def forward(self, x):
        y = torch.clamp(x, min=0)
        self.cache = x
        return y

    def backward(self, dupstream):
        dupstream = dupstream.clone()
        y = self.cache
        dx = dupstream
        dx[y <= 0] = 0
        return dx


class Sigmoid(object):
    """Caches its output; the backward uses it as the output (y (1 - y))."""

    bug = ""

    def __init__(self):
        self.cache = None

    def forward(self, x):
        y = 1 / (1 + torch.exp(-x))
        self.cache = y
        return y

    def backward(self, dupstream):
        y = self.cache
        if self.bug == "sigmoid_of_output":  # applies the sigmoid again to a cache that is its output already
            s = 1 / (1 + torch.exp(-y))
            return dupstream * s * (1 - s)
        return dupstream * y * (1 - y)


class Net(object):
    def __init__(self, layers):
        self.layers = layers
        self.reset_params()

    def reset_params(self, std=1.0):
        for layer in self.layers:
            if hasattr(layer, "init_params"):
                layer.init_params(std=std)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dupstream):
        dx = dupstream
        for layer in reversed(self.layers):
            dx = layer.backward(dx)
        return dx


class LinearNNShaped(Linear):
    """weight (out, in) as nn.Linear stores it, x @ W.T: a convention, accepted."""

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features)
        self.weight = torch.randn(out_features, in_features)

    def init_params(self, std=1.0):
        self.weight = std * torch.randn(self.bias.numel(), self.weight.numel() // self.bias.numel())
        self.bias = torch.rand_like(self.bias)

    def forward(self, x):
        self.cache = x
        return x @ self.weight.T + self.bias

    def backward(self, dupstream):
        self.weight_grad = dupstream.T @ self.cache
        self.bias_grad = dupstream.sum(0)
        return dupstream @ self.weight


class CachesOutput(Linear):
    bug = "cache_output"


class NoWeightInDx(Linear):
    bug = "dx_no_weight"


class BiasNotSummed(Linear):
    bug = "bias_not_summed"


class SigmoidOfOutput(Sigmoid):
    bug = "sigmoid_of_output"
