"""Patient statements: aging, plain-language reasons, dunning, rendering and delivery."""
