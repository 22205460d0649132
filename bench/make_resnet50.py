"""Writes a ResNet-50 TorchScript backbone (random weights: no pretrained weights can be downloaded here;
speed does not depend on them) with the classification layer removed, so it outputs 2048-d features.
Run with Debian's interpreter: /usr/bin/python3 bench/make_resnet50.py OUT.pt"""
import sys

import torch
import torchvision

torch.manual_seed(0)
net = torchvision.models.resnet50(weights=None)
net.fc = torch.nn.Identity()
torch.jit.script(net.eval()).save(sys.argv[1])
