"""Signal sources: each learns from interactions and scores items for users in bulk.

- :class:`DecayedPopularity`: what many users engage with now.
- :class:`ItemCooccurrence`: items engaged with together (item-based CF).
- :class:`OnlineMF`: user and item embeddings learned by BPR with sampled negatives.
- :class:`UserNeighbourhood`: users who engage with the same items (user-based CF).
"""

from stream.signals.cooccurrence import ItemCooccurrence
from stream.signals.factorization import OnlineMF
from stream.signals.neighbours import UserNeighbourhood
from stream.signals.popularity import DecayedPopularity
from stream.signals.profiles import ItemCFProfiles

__all__ = [
    "DecayedPopularity",
    "ItemCFProfiles",
    "ItemCooccurrence",
    "OnlineMF",
    "UserNeighbourhood",
]
