import factory

from catalog.models import Category, Product


class CategoryFactory(factory.django.DjangoModelFactory):
    """A root category; pass ``parent`` and ``path`` together for a child (or use ``catalog_upsert``)."""

    class Meta:
        model = Category

    code = factory.Sequence(lambda n: f"category-{n}")
    name = factory.Sequence(lambda n: f"Category {n}")
    path = factory.LazyAttribute(lambda category: category.code)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
