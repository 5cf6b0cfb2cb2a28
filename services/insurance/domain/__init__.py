"""Insurance's pure domain: products and premiums, group policies and endorsements, order cover
and claims. No I/O and no protobuf; the rules are written in docs/insurance.md."""
