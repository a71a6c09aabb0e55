from django.contrib import admin

from billing.models import AuditEntry, Biller, Membership, User


@admin.register(Biller)
class BillerAdmin(admin.ModelAdmin):
    list_display = ["biller_code", "legal_name", "slug", "status"]
    search_fields = ["legal_name", "biller_code", "slug"]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["login", "name", "realm", "is_idc_staff", "is_active"]
    search_fields = ["login", "name"]
    exclude = ["password"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "biller", "role"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "biller", "summary"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
