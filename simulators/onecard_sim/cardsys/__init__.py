"""The provincial card system simulator (`onecard-sim cardsys`): status changes made outside the
school — identity function at an HR service window, bank function at a bank branch — each with a
version, streamed to the hub (`WatchChanges`), with fault injection to exercise its reconnect."""

from onecard_sim.cardsys.client import CardsysClient
from onecard_sim.cardsys.server import RunningCardsys, running_cardsys

__all__ = ["CardsysClient", "RunningCardsys", "running_cardsys"]
