"""Administration pages of the Region (role ``admin`` only): for now, the accounts to approve."""
