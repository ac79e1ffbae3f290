"""Use cases, between the HTTP routes and the parts that do the work (R2R's service layer):
documents (ingest, update, list, read, delete), retrieval (search) and answering (ask).

Routes validate HTTP input and shape HTTP output; everything in between is here, so a route is
a call to one method, and the CLI or a benchmark can call the same methods without HTTP."""
