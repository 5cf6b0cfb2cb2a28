"""The web gateway (网关): the service-card verification page a consumer opens at the door
(居家上门服务证 核验) and the regulator dashboard, over the gRPC APIs of workers, orders and
regulator. It holds no data and decides nothing: every rule stays in the service that owns it."""
