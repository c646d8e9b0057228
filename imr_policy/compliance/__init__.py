"""The compliance analyst's tools: semantic diff, impact, corpora, batch runs, the decision log and the UR letter."""
