from django.contrib import admin

from customers.models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["phone", "name", "membership", "joined_at", "created_at"]
    list_filter = ["membership"]
    search_fields = ["=phone", "name"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False  # no COUNT(*) over millions of customers (F-STAFF-4)
    sortable_by = ["phone", "joined_at", "created_at"]
