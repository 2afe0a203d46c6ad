"""Network parts shared by Q-networks and the supervised digits classifier."""

from rlkit.nets.bodies import CNNBody, MLPBody, body_for_shape
from rlkit.nets.heads import ClassifierHead, DuelingHead, QHead, QNetwork
from rlkit.nets.inputs import OneHot, Scale

__all__ = ["CNNBody", "ClassifierHead", "DuelingHead", "MLPBody", "OneHot", "QHead", "QNetwork", "Scale", "body_for_shape"]
