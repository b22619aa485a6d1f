"""Built-in training and evaluation recipes."""
