"""The regulator's pure domain: pseudonyms, the projection of source events, the indicators."""
