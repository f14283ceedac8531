"""Writes the five course-form notebooks beside this file, as their students write them: a Colab Drive mount,
magics and shell lines, a data download, the definitions spread over cells (EPFL's backward_pass four times: the
stub, two broken attempts from the course's own corrections, the fixed one last), and training cells that would run
for hours if executed (`for epoch in range(10**9)`). Run it to regenerate them: python make_notebooks.py"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
FOREVER = "for epoch in range(10**9):  # hours, if it ever ran\n"

COLAB = "from google.colab import drive\ndrive.mount('/content/drive')\n%cd drive/MyDrive/DeepLearning2022"

EPFL = [
    "## Practical Session 3",
    "!pip install -q torch\n%matplotlib inline\nimport torch\nfrom torch import Tensor\nimport dlc_practical_prologue as prologue",
    "class Args:\n    full = True\n    tiny = True\n    seed = 42\n\nargs = Args()",
    "train_input, train_target, test_input, test_target = prologue.load_data(\n"
    "     one_hot_labels=True, normalize=True, flatten=True\n)",
    "### 1- Activation Function",
    "def sigma(x):\n    return torch.tanh(x)\n\ndef dsigma(x):\n    return 1-torch.tanh(x).pow(2)",
    "torch.mv?",
    "def loss(v, t):\n    return (v - t).pow(2).sum()\n\n\ndef dloss(v, t):\n    return 2 * (v - t)",
    "def forward_pass(w1, b1, w2, b2, x):\n    x0 = x\n    s1 = w1 @ x0 + b1\n    x1 = sigma(s1)\n    s2 =  w2 @ x1 + b2\n"
    "    x2 = sigma(s2)\n    return x0, s1, x1, s2, x2\n\n"
    "def backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_w1, dl_db1, dl_dw2, dl_db2):\n    pass",
    "## Correction",
    "def forward_pass(w1, b1, w2, b2, x):\n    x0 = x\n    s1 = w1.mv(x0) + b1\n    x1 = sigma(s1)\n"
    "    s2 = w2.mv(x1) + b2\n    x2 = sigma(s2)\n    return x0, s1, x1, s2, x2",
    "x = train_input[0].view(-1)\nx.size()",
    "dl_w1 = 0\ndl_db1 = 0\ndl_dw2 = 0\ndl_db2 = 0\n\n"
    "def backward_pass(w1, b1, w2, b2,\n                  t,\n                  x, s1, x1, s2, x2,\n"
    "                  dl_w1, dl_db1, dl_dw2, dl_db2):\n    dl_dw2 += dloss(t, x2) * dsigma(x2).t() * x1.t()\n"
    "    dl_db2 += dloss(t, x2) * dsigma(x2)\n    return dl_w1, dl_db1, dl_dw2, dl_db2",
    "Fist improvement is to make a less nested function + be aware dsigma is applied on the state s, not on x !",
    "def backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_w1, dl_db1, dl_dw2, dl_db2):\n"
    "    dl_dx2 = dloss(t, x2)\n    dl_ds2 = dl_dx2 * dsigma(s2).t()\n    dl_dx1 = w2 * dl_ds2\n"
    "    dl_ds1 = dl_dx2 * dsigma(s1).t()\n    dl_dw2 += dl_ds2 * x1.t()\n    return dl_w1, dl_db1, dl_dw2, dl_db2",
    "### Correction",
    "def backward_pass(w1, b1, w2, b2,\n                  t,\n                  x, s1, x1, s2, x2,\n"
    "                  dl_dw1, dl_db1, dl_dw2, dl_db2):\n    x0 = x\n    dl_dx2 = dloss(x2, t)\n"
    "    dl_ds2 = dsigma(s2) * dl_dx2\n    dl_dx1 = w2.t().mv(dl_ds2)\n    dl_ds1 = dsigma(s1) * dl_dx1\n\n"
    "    dl_dw2.add_(dl_ds2.view(-1, 1).mm(x1.view(1, -1)))\n    dl_db2.add_(dl_ds2)\n"
    "    dl_dw1.add_(dl_ds1.view(-1, 1).mm(x0.view(1, -1)))\n    dl_db1.add_(dl_ds1)\n\n"
    "    return dl_dw1, dl_db1, dl_dw2, dl_db2",
    "import math\n\nw1 = torch.empty(50, 784).normal_(0, math.exp(-6))\nb1 = torch.empty(50).normal_(0, math.exp(-6))\n"
    "w2 = torch.empty(10, 50).normal_(0, math.exp(-6))\nb2 = torch.empty(10).normal_(0, math.exp(-6))",
    "eta = 0.1 / train_input.size(0)\n\n" + FOREVER + "    dl_dw1 = torch.zeros(w1.size())\n"
    "    for n in range(train_input.size(0)):\n        x0, s1, x1, s2, x2 = forward_pass(w1, b1, w2, b2, train_input[n])\n",
]

UMONS = [
    "# Machine Learning II 2021-2022 - UMONS\n# Assignment IV",
    "# Setup\nimport torch\nimport torch.nn as nn\nfrom torch.utils.data import DataLoader\n"
    "from torchvision import datasets, transforms\nimport matplotlib.pyplot as plt",
    "class Linear(object):\n    def __init__(self, in_features, out_features):\n        super(Linear, self).__init__()\n"
    "        self.weight = torch.zeros(in_features, out_features)\n        self.bias = torch.zeros(out_features)\n"
    "        self.init_params()\n        self.cache = None\n        self.weight_grad = None\n        self.bias_grad = None\n\n"
    "    def init_params(self, std=1.):\n        self.weight = std*torch.randn_like(self.weight)\n"
    "        self.bias = torch.rand_like(self.bias)\n\n    def forward(self, x):\n        y = x @ self.weight + self.bias\n"
    "        self.cache = x\n        return y\n\n    def backward(self, dupstream):\n        x = self.cache\n"
    "        dx = dupstream @ self.weight.T\n        self.weight_grad = x.T @ dupstream\n"
    "        self.bias_grad = dupstream.sum(dim=0)\n        return dx",
    "n_samples, in_features, out_features = 2, 3, 4\nx = torch.randn((n_samples, in_features))\n"
    "layer = Linear(in_features, out_features)\ny = layer.forward(x)\nprint('Shape of ouput tensor y:', y.shape)",
    "class ReLU(object):\n    def __init__(self):\n        super(ReLU, self).__init__()\n        self.cache = None\n\n"
    "    def forward(self, x):\n        y = torch.clamp(x, min=0)\n        self.cache = x\n        return y\n\n"
    "    def backward(self, dupstream):\n        dupstream = dupstream.clone()\n        y = self.cache\n"
    "        dx = dupstream\n        dx[y <= 0] = 0\n        return dx\n\n"
    "class Sigmoid(object):\n    def __init__(self):\n        super(Sigmoid, self).__init__()\n        self.cache = None\n\n"
    "    def forward(self, x):\n        y = 1 / (1 + torch.exp(-x))\n        self.cache = x\n        return y\n\n"
    "    def backward(self, dupstream):\n        y = 1 / (1 + torch.exp(-self.cache))\n"
    "        dx = dupstream * y * (1 - y)\n        return dx",
    "class Net(object):\n    def __init__(self, layers):\n        self.layers = layers\n        self.reset_params()\n\n"
    "    def reset_params(self, std=1.):\n        for layer in self.layers:\n            if hasattr(layer, 'init_params'):\n"
    "                layer.init_params(std=std)\n\n    def forward(self, x):\n        for layer in self.layers:\n"
    "            x = layer.forward(x)\n        return x\n\n    def backward(self, dupstream):\n        dx = dupstream\n"
    "        for layer in self.layers[::-1]:\n            dx = layer.backward(dx)\n        return dx\n\n"
    "    def optimizer_step(self, lr):\n        for layer in self.layers:\n            if hasattr(layer, 'weight'):\n"
    "                layer.weight -= lr * layer.weight_grad\n                layer.bias -= lr * layer.bias_grad",
    "class TorchNet(nn.Module):\n    def __init__(self, in_features, hidden_dim, out_features):\n"
    "        super(TorchNet, self).__init__()\n        self.layer1 = nn.Linear(in_features, hidden_dim)\n"
    "        self.relu = nn.ReLU()\n        self.layer2 = nn.Linear(hidden_dim, out_features)\n\n"
    "    def forward(self, x):\n        return self.layer2(self.relu(self.layer1(x)))",
    "def Softmax(z):\n    z = z - z.max(dim=1, keepdim=True).values\n    return z.exp() / z.exp().sum(dim=1, keepdim=True)\n\n"
    "def CrossEntropyLoss(y_true, y_pred):\n    softmax = Softmax(y_pred)\n    y_true = torch.argmax(y_true, axis=1)\n"
    "    n = y_true.shape[0]\n    log_likelihood = -torch.log(softmax[torch.arange(n),y_true])\n"
    "    loss = torch.mean(log_likelihood)\n    grad = softmax\n    softmax[torch.arange(n), y_true] -= 1\n"
    "    grad /= n\n    return loss, grad",
    "transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])\n"
    "train_data = datasets.MNIST('../data', train=True, download=True, transform=transform)\n"
    "train_loader = DataLoader(train_data, batch_size=64, shuffle=True)",
    "in_features, hidden_dim, out_features = 28*28, 30, 10\nlearning_rate = 5e-1\n"
    "layers = [Linear(in_features, hidden_dim), Sigmoid(), Linear(hidden_dim, out_features)]\nnet = Net(layers)\n"
    + FOREVER
    + "    for i, (x_batch, y_batch) in enumerate(train_loader):\n        y_pred = net.forward(x_batch.flatten(1))",
]

CS231N = [
    "# Implementing a Two-Layer Network",
    COLAB,
    "!pip install -q numpy\nimport numpy as np\nimport matplotlib.pyplot as plt\nimport utils\n%matplotlib inline\n"
    "plt.rcParams['figure.figsize'] = (10.0, 8.0)\n%load_ext autoreload\n%autoreload 2",
    "class TwoLayerNet(object):\n    def __init__(self, input_size, hidden_size, output_size, std=1e-4):\n"
    "        self.params = {}\n        self.params['W1'] = std * np.random.randn(input_size, hidden_size)\n"
    "        self.params['b1'] = np.zeros(hidden_size)\n        self.params['W2'] = std * np.random.randn(hidden_size, output_size)\n"
    "        self.params['b2'] = np.zeros(output_size)\n\n    def loss(self, X, y=None, reg=0.0):\n"
    "        W1, b1 = self.params['W1'], self.params['b1']\n        W2, b2 = self.params['W2'], self.params['b2']\n"
    "        N, D = X.shape\n        h = np.maximum(0, X.dot(W1) + b1)\n        scores = h.dot(W2) + b2\n"
    "        if y is None:\n            return scores\n        scores -= np.max(scores, axis=1, keepdims=True)\n"
    "        probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)\n"
    "        loss = np.sum(-np.log(probs[range(N), y])) / N\n        loss += reg * (np.sum(W1 * W1) + np.sum(W2 * W2))\n"
    "        grads = {}\n        dscores = probs\n        dscores[range(N), y] -= 1\n        dscores /= N\n"
    "        grads['W2'] = h.T.dot(dscores) + 2 * reg * W2\n        grads['b2'] = np.sum(dscores, axis=0)\n"
    "        dh = dscores.dot(W2.T)\n        dh[h <= 0] = 0\n        grads['W1'] = X.T.dot(dh) + 2 * reg * W1\n"
    "        grads['b1'] = np.sum(dh, axis=0)\n        return loss, grads",
    "input_size = 4\nhidden_size = 10\nnum_classes = 3\nnum_inputs = 5\n"
    "net = TwoLayerNet(input_size, hidden_size, num_classes, std=1e-1)\nX = 10 * np.random.randn(num_inputs, input_size)",
    "x_train, y_train, x_val, y_val = utils.load_data()",
    "net = TwoLayerNet(28 * 28, 36, 10)\n" + FOREVER + "    stats = net.train(x_train, y_train, x_val, y_val)",
    "plt.plot(stats['loss_history'], 'o')\nplt.show()",
]

RUMELHART = [
    "# Homework 2: Rumelhart et al. 1986, mirror symmetry",
    COLAB,
    "import torch\nfrom torch.utils.data import TensorDataset\nfrom torch.utils.data import DataLoader\n"
    "from itertools import product",
    "X = torch.Tensor([item for item in product([0, 1], repeat=6)])\nleng = 64",
    "y = torch.zeros((leng, 1))\nfor j in range(leng):\n    y[j] = float(all(X[j][i] == X[j][5 - i] for i in range(3)))",
    "train = TensorDataset(X, y)\ntrainloader = DataLoader(train, batch_size=leng, shuffle=False)\nepsilon = 0.1",
    "class MLP(torch.nn.Module):\n\n    def __init__(self):\n        super().__init__()\n"
    "        self.layer1 = torch.nn.Linear(in_features =  6, out_features = 2, bias = True)\n"
    "        self.layer2 = torch.nn.Linear(in_features =  2, out_features = 1, bias = True)\n\n"
    "    def forward(self, X):\n        out = self.layer1(X)\n        out = torch.sigmoid(out)\n"
    "        out = self.layer2(out)\n        out = torch.sigmoid(out)\n        return out",
    "num_epochs = 1000",
    "model = MLP()\nloss_fn = torch.nn.MSELoss()\noptimizer = torch.optim.SGD(model.parameters(), lr=epsilon)",
    FOREVER
    + "    for X_, y_ in trainloader:\n        optimizer.zero_grad()\n        loss_fn(model(X_), y_).backward()\n"
    "        optimizer.step()",
    "model.state_dict()",
]

COURSERA = [
    "# Planar data classification with one hidden layer",
    "# Package imports\nimport numpy as np\nimport matplotlib.pyplot as plt\nfrom testCases_v2 import *\nimport sklearn\n"
    "import sklearn.datasets\nimport sklearn.linear_model\n"
    "from planar_utils import plot_decision_boundary, sigmoid, load_planar_dataset, load_extra_datasets\n\n"
    "%matplotlib inline\n\nnp.random.seed(1) # set a seed so that the results are consistent",
    "X, Y = load_planar_dataset()",
    "plt.scatter(X[0, :], X[1, :], c=Y, s=40, cmap=plt.cm.Spectral);",
    "# GRADED FUNCTION: layer_sizes\n\ndef layer_sizes(X, Y):\n    ### START CODE HERE ### (≈ 3 lines of code)\n"
    "    n_x = X.shape[0] # size of input layer\n    n_h = 4\n    n_y = Y.shape[0] # size of output layer\n"
    "    ### END CODE HERE ###\n    return (n_x, n_h, n_y)",
    "X_assess, Y_assess = layer_sizes_test_case()\n(n_x, n_h, n_y) = layer_sizes(X_assess, Y_assess)\n"
    "print(\"The size of the input layer is: n_x = \" + str(n_x))",
    "# GRADED FUNCTION: forward_propagation\n\ndef forward_propagation(X, parameters):\n"
    "    # Retrieve each parameter from the dictionary \"parameters\"\n    ### START CODE HERE ### (≈ 4 lines of code)\n"
    "    W1 = parameters['W1']\n    b1 = parameters['b1']\n    W2 = parameters['W2']\n    b2 = parameters['b2']\n"
    "    ### END CODE HERE ###\n    \n    # Implement Forward Propagation to calculate A2 (probabilities)\n"
    "    ### START CODE HERE ### (≈ 4 lines of code)\n    Z1 = np.dot(W1,X) + b1\n    A1 = np.tanh(Z1)\n"
    "    Z2 = np.dot(W2,A1) + b2\n    A2 = sigmoid(Z2)\n    ### END CODE HERE ###\n    \n"
    "    assert(A2.shape == (1, X.shape[1]))\n    \n    cache = {\"Z1\": Z1,\n             \"A1\": A1,\n"
    "             \"Z2\": Z2,\n             \"A2\": A2}\n    \n    return A2, cache",
    "X_assess, parameters = forward_propagation_test_case()\nA2, cache = forward_propagation(X_assess, parameters)",
    "# GRADED FUNCTION: compute_cost\n\ndef compute_cost(A2, Y):\n    m = Y.shape[1] # number of example\n\n"
    "    # Compute the cross-entropy cost\n    ### START CODE HERE ### (≈ 2 lines of code)\n"
    "    logprobs = np.multiply(np.log(A2),Y) + np.multiply(np.log(1-A2),(1-Y))\n    cost = - np.sum(logprobs) / m\n"
    "    ### END CODE HERE ###\n    \n    cost = float(np.squeeze(cost))  # makes sure cost is the dimension we expect.\n"
    "    assert(isinstance(cost, float))\n    \n    return cost",
    "# GRADED FUNCTION: backward_propagation\n\ndef backward_propagation(parameters, cache, X, Y):\n"
    "    m = X.shape[1]\n    \n    # First, retrieve W1 and W2 from the dictionary \"parameters\".\n"
    "    ### START CODE HERE ### (≈ 2 lines of code)\n    W1 = parameters['W1']\n    W2 = parameters['W2']\n"
    "    ### END CODE HERE ###\n        \n    # Retrieve also A1 and A2 from dictionary \"cache\".\n"
    "    ### START CODE HERE ### (≈ 2 lines of code)\n    A1 = cache['A1']\n    A2 = cache['A2']\n"
    "    ### END CODE HERE ###\n    \n    # Backward propagation: calculate dW1, db1, dW2, db2. \n"
    "    ### START CODE HERE ### (≈ 6 lines of code, corresponding to 6 equations on slide above)\n"
    "    dZ2 = A2 - Y\n    dW2 = (1/m) * np.dot(dZ2, A1.T)\n    db2 = (1/m) * np.sum(dZ2, axis=1, keepdims=True)\n"
    "    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))\n    dW1 = (1/m) * np.dot(dZ1, X.T)\n"
    "    db1 = (1/m) * np.sum(dZ1, axis=1, keepdims=True)\n    ### END CODE HERE ###\n    \n"
    "    grads = {\"dW1\": dW1,\n             \"db1\": db1,\n             \"dW2\": dW2,\n             \"db2\": db2}\n"
    "    \n    return grads",
    "parameters, cache, X_assess, Y_assess = backward_propagation_test_case()\n\n"
    "grads = backward_propagation(parameters, cache, X_assess, Y_assess)\nprint (\"dW1 = \"+ str(grads[\"dW1\"]))",
    "# GRADED FUNCTION: nn_model\n\ndef nn_model(X, Y, n_h, num_iterations = 10000, print_cost=False):\n"
    "    np.random.seed(3)\n    n_x = layer_sizes(X, Y)[0]\n    n_y = layer_sizes(X, Y)[2]\n"
    "    parameters = initialize_parameters(n_x, n_h, n_y)\n    for i in range(0, num_iterations):\n"
    "        A2, cache = forward_propagation(X, parameters)\n        cost = compute_cost(A2, Y)\n"
    "        grads = backward_propagation(parameters, cache, X, Y)\n"
    "        parameters = update_parameters(parameters, grads)\n    return parameters",
    "# Build a model with a n_h-dimensional hidden layer\n"
    "parameters = nn_model(X, Y, n_h = 4, num_iterations = 10**9, print_cost=True)  # hours, if it ever ran here\n\n"
    "# Plot the decision boundary\nplot_decision_boundary(lambda x: predict(parameters, x.T), X, Y)\n"
    "plt.title(\"Decision Boundary for hidden layer size \" + str(4))",
]


def write(name: str, cells: list[str]) -> Path:
    """A notebook of these cells (a cell starting with '#' or a capital letter and no code is markdown)."""
    nb = new_notebook()
    for i, text in enumerate(cells):
        is_text = text.startswith(("#", "Fist")) and "\n" not in text and "import" not in text
        cell = new_markdown_cell(text) if is_text else new_code_cell(text, execution_count=i + 1)
        nb.cells.append(cell)
    nb.metadata["colab"] = {"provenance": []}
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


NOTEBOOKS = {
    "epfl_practical3": EPFL,
    "umons_assignment4": UMONS,
    "cs231n_two_layer_net": CS231N,
    "rumelhart_mlp": RUMELHART,
    "coursera_planar": COURSERA,
}

if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        print(write(name, cells))
