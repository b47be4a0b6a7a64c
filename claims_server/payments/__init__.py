"""Patient payments (statement link, front desk, mailed check) and payment plans."""
