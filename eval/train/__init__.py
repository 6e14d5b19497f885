"""Training the answer model from public train and dev splits (`lede train answers`)."""
