"""The billing practice and its providers (837 loops 2010AA, 2010AB, 2310x, 1000A)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import EnumText, IdType, PublicIdMixin, TimestampMixin, enum_check

if TYPE_CHECKING:
    from claims_server.models.patients import Patient


class ProviderEntityType(StrEnum):
    """NM102 entity type qualifier: 1 = person, 2 = non-person entity."""

    INDIVIDUAL = "individual"
    ORGANIZATION = "organization"


class Practice(PublicIdMixin, TimestampMixin, Base):
    """The billing provider organisation (loop 2010AA) and the submitter (loop 1000A)."""

    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))  # NM103 (2010AA), also 1000A NM103
    npi: Mapped[str] = mapped_column(String(10), index=True)  # NM109 with NM108 = XX
    tax_id: Mapped[str] = mapped_column(String(9))  # REF02 with REF01 = EI (EIN, 9 digits, no hyphen)
    taxonomy_code: Mapped[str | None] = mapped_column(String(10))  # PRV03 (2000A, PRV01 = BI)
    address_line1: Mapped[str] = mapped_column(String(55))  # N301; 2010AA may not be a PO box
    address_line2: Mapped[str | None] = mapped_column(String(55))  # N302
    city: Mapped[str] = mapped_column(String(30))  # N401
    state: Mapped[str] = mapped_column(String(2))  # N402
    zip_code: Mapped[str] = mapped_column(String(9))  # N403: 2010AA requires ZIP+4, digits only
    phone: Mapped[str | None] = mapped_column(String(10))  # PER04 with PER03 = TE
    contact_name: Mapped[str | None] = mapped_column(String(60))  # PER02 (1000A submitter contact)
    contact_email: Mapped[str | None] = mapped_column(String(256))  # PER06 with PER05 = EM
    submitter_id: Mapped[str] = mapped_column(String(80))  # 1000A NM109: the ETIN the clearinghouse assigned
    pay_to_address_line1: Mapped[str | None] = mapped_column(String(55))  # 2010AB N301 (only if different)
    pay_to_address_line2: Mapped[str | None] = mapped_column(String(55))  # 2010AB N302
    pay_to_city: Mapped[str | None] = mapped_column(String(30))  # 2010AB N401
    pay_to_state: Mapped[str | None] = mapped_column(String(2))  # 2010AB N402
    pay_to_zip_code: Mapped[str | None] = mapped_column(String(9))  # 2010AB N403
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    providers: Mapped[list[Provider]] = relationship(back_populates="practice")
    patients: Mapped[list[Patient]] = relationship(back_populates="practice")


class Provider(PublicIdMixin, TimestampMixin, Base):
    """A person or organisation that renders, refers, supervises or hosts services.

    One row per NPI within a practice; the role flags say in which 837 loops it may
    appear (2310B rendering, 2310A referring, 2310D supervising, 2310C facility).
    """

    __tablename__ = "providers"
    __table_args__ = (
        UniqueConstraint("practice_id", "npi"),
        enum_check("entity_type", ProviderEntityType),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    practice_id: Mapped[int] = mapped_column(IdType, ForeignKey("practices.id"), index=True)
    entity_type: Mapped[ProviderEntityType] = mapped_column(
        EnumText(ProviderEntityType, 16), default=ProviderEntityType.INDIVIDUAL
    )
    last_name: Mapped[str] = mapped_column(String(60))  # NM103: last name, or organisation name
    first_name: Mapped[str | None] = mapped_column(String(35))  # NM104
    middle_name: Mapped[str | None] = mapped_column(String(25))  # NM105
    name_suffix: Mapped[str | None] = mapped_column(String(10))  # NM107
    credential: Mapped[str | None] = mapped_column(String(20))  # e.g. MD, NP: shown on statements only
    npi: Mapped[str] = mapped_column(String(10), index=True)  # NM109 with NM108 = XX
    taxonomy_code: Mapped[str | None] = mapped_column(String(10))  # PRV03 (2310B PRV01 = PE)
    address_line1: Mapped[str | None] = mapped_column(String(55))  # 2310C N301 (facility)
    address_line2: Mapped[str | None] = mapped_column(String(55))  # 2310C N302
    city: Mapped[str | None] = mapped_column(String(30))  # 2310C N401
    state: Mapped[str | None] = mapped_column(String(2))  # 2310C N402
    zip_code: Mapped[str | None] = mapped_column(String(9))  # 2310C N403
    is_rendering: Mapped[bool] = mapped_column(Boolean, default=False)
    is_referring: Mapped[bool] = mapped_column(Boolean, default=False)
    is_supervising: Mapped[bool] = mapped_column(Boolean, default=False)
    is_facility: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    practice: Mapped[Practice] = relationship(back_populates="providers")

    @property
    def display_name(self) -> str:
        """'First Last' for a person, the organisation name otherwise."""
        if self.entity_type == ProviderEntityType.ORGANIZATION or not self.first_name:
            return self.last_name
        return f"{self.first_name} {self.last_name}"
