"""Territory: communes, EPCI and SIVOS of the region, the collectivités that apply for aids."""
