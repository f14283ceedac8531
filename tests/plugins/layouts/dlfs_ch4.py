# Deep Learning from Scratch, chapter 4, as its readers hand it in: the book's helpers star-imported from common/
# (not beside this file here), the MNIST loader imported, and a training loop at module level.
import sys, os

sys.path.append(os.pardir)
from common.functions import *
from common.gradient import numerical_gradient
from dataset.mnist import load_mnist


class TwoLayerNet:
    bug = ""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        self.params = {}
        self.params["W1"] = weight_init_std * np.random.randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = weight_init_std * np.random.randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)

    def predict(self, x):
        h = sigmoid(np.dot(x, self.params["W1"]) + self.params["b1"])
        return softmax(np.dot(h, self.params["W2"]) + self.params["b2"])

    def loss(self, x, t):
        return cross_entropy_error(self.predict(x), t)

    def accuracy(self, x, t):
        return np.sum(np.argmax(self.predict(x), axis=1) == np.argmax(t, axis=1)) / float(x.shape[0])

    def numerical_gradient(self, x, t):
        f = lambda W: self.loss(x, t)
        return {k: numerical_gradient(f, self.params[k]) for k in ("W1", "b1", "W2", "b2")}

    def gradient(self, x, t):
        W1, b1, W2, b2 = self.params["W1"], self.params["b1"], self.params["W2"], self.params["b2"]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        y = softmax(np.dot(z1, W2) + b2)
        dy = (y - t) if self.bug == "no_batch_mean" else (y - t) / x.shape[0]
        grads = {"W2": np.dot(z1.T, dy), "b2": np.sum(dy, axis=0)}
        da1 = np.dot(dy, W2.T)
        dz1 = sigmoid_grad(z1 if self.bug == "grad_of_output" else a1) * da1
        grads["W1"] = np.dot(x.T, dz1)
        grads["b1"] = np.sum(dz1, axis=0)
        return grads


(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
for i in range(10000):
    mask = np.random.choice(x_train.shape[0], 100)
    grad = network.gradient(x_train[mask], t_train[mask])
    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= 0.1 * grad[key]
