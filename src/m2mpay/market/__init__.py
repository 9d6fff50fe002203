"""What a node sells and how: the offer book kept across restarts and resale along a
value chain (tokens, exchange and the service registry join it later)."""

from m2mpay.market.offer_book import OfferBook, ResaleTerms, SavedOffer
from m2mpay.market.resale import Reconciliation, Resale

__all__ = ["OfferBook", "Reconciliation", "Resale", "ResaleTerms", "SavedOffer"]
