"""vlash: future-state-aware asynchronous inference for vision-language-action policies."""

__version__ = "0.1.0"
