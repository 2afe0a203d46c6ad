"""Network parts shared by Q-networks and the supervised digits classifier."""

from rlkit.nets.bodies import CNNBody, MLPBody, body_for_shape
from rlkit.nets.heads import ClassifierHead, DuelingHead, Network, QHead
from rlkit.nets.inputs import OneHot, Scale

__all__ = ["CNNBody", "ClassifierHead", "DuelingHead", "MLPBody", "Network", "OneHot", "QHead", "Scale", "body_for_shape"]
