"""Tests of fhirlake.bulk (the client) and fhirlake.bulkserver (the embedded server)."""
