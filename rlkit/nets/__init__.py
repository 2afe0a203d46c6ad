"""Network parts shared by Q-networks and the supervised digits classifier."""

from rlkit.nets.bodies import CNNBody, MLPBody, body_for_shape
from rlkit.nets.heads import DuelingHead, LinearHead, Network
from rlkit.nets.inputs import OneHot, Scale

__all__ = ["CNNBody", "DuelingHead", "LinearHead", "MLPBody", "Network", "OneHot", "Scale", "body_for_shape"]
