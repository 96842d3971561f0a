"""VQA v2: the imdb builder, examples, answer vocabulary, official metric, EvalAI result files and the entry
points' helpers."""
