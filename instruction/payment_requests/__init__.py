"""Payment requests (demandes de versement): a beneficiary asks for an instalment or the balance of
its grant, declaring the expenses it actually paid with their paid invoices; finance pays what the
rules say is payable (or less, with a reason) through the payment service, or returns the request.
Grants whose balance was not asked in time lapse (``lapse``)."""
