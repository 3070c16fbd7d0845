"""A worked example for library authors: ``tinytape``, a tiny reverse-mode library, and
``tinytape_adapter``, the adapter that puts it under the conformance suite
(``pytest --pyargs conformance --impl=conformance.examples.tinytape_adapter:Adapter``)."""
