"""Everything that speaks Pay-easy: bank directory, contracted banks, numbers, the MPN line."""
