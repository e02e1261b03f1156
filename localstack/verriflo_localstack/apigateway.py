"""placeholder"""
from localstack.runtime import hooks


@hooks.on_infra_start()
def verriflo_apigateway_extension():
    pass
