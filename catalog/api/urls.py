from django.urls import path

from catalog.api.views import CatalogUpsertApi, ProductDetailApi, ProductListApi

urlpatterns = [
    path("catalog/upsert", CatalogUpsertApi.as_view(), name="catalog-upsert"),
    path("catalog/products", ProductListApi.as_view(), name="catalog-products"),
    path("catalog/products/<path:sku>", ProductDetailApi.as_view(), name="catalog-product-detail"),
]
