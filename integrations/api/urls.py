from django.urls import path

from integrations.api.views import ChannelMeApi

urlpatterns = [
    path("channel", ChannelMeApi.as_view(), name="channel-me"),
]
