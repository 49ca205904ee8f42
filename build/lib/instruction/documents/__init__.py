"""Documents: invoices and quotes, stored outside the web root, served only to who may see them."""
