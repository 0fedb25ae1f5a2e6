"""Traffic analytics after Caltrans PeMS on the Transport Department's detector feeds: the
feed readers (``feed``), 5-minute aggregation, daily detector health, imputation, performance
measures, bottlenecks and journey-time reliability. See docs/analytics.md, "Traffic"."""
