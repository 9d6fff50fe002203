"""What a node sells and how: the offer book kept across restarts, resale along a value
chain, and the service registry as the node sees it (its index, discovery, the check of
an offer against its listing, ratings from receipts)."""

from m2mpay.market.discovery import Found, ServiceQuery, find_services, offer_differences
from m2mpay.market.offer_book import OfferBook, ResaleTerms, SavedOffer
from m2mpay.market.rating import RatingProof, rate_session, rating_proof
from m2mpay.market.registry_index import ListedService, RatingEvent, RegistryIndex
from m2mpay.market.resale import Reconciliation, Resale

__all__ = [
    "Found",
    "ListedService",
    "OfferBook",
    "RatingEvent",
    "RatingProof",
    "Reconciliation",
    "RegistryIndex",
    "Resale",
    "ResaleTerms",
    "SavedOffer",
    "ServiceQuery",
    "find_services",
    "offer_differences",
    "rate_session",
    "rating_proof",
]
