"""Two-stage recommendation: retrievers propose candidates, a LightGBM LambdaRank ranker orders
them on point-in-time Feast features. Pure, except the Feast reader (dataset) and save/load."""
